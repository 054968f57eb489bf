import Foundation
import InferenceAPI
import Logging
import ServiceLifecycle
import UnixSignals

// MARK: - Settings that change while the server runs

/// Re-reads the settings' sources (the config file; flags and environment are fixed for the process)
/// and the API key file on SIGHUP and every `pollInterval`, so a rotated Kubernetes Secret or an edited
/// key file takes effect without a restart. Applies what can change live (API keys, log level) and
/// warns about the rest. A reload that fails keeps the current settings: a half-written or emptied
/// key file never turns authentication off.
final class SettingsReloader: Service, @unchecked Sendable {
    private let arguments: [String]
    private let environment: [String: String]
    private let pollInterval: Duration
    private let service: InferenceService
    private let logControl: LogControl
    /// Re-reads the HTTPS certificate and key (on SIGHUP only: the files are read whole, once).
    private let reloadTLS: (@Sendable () throws -> Void)?
    private let logger: Logger
    private let lock = NSLock()
    private var current: ServerOptions
    private var currentKeys: [String]
    /// The last reload error, logged once rather than at every poll until it is fixed.
    private var lastError: String?

    init(arguments: [String], environment: [String: String], initial: ServerOptions, keys: [String], pollInterval: Duration,
         service: InferenceService, logControl: LogControl, reloadTLS: (@Sendable () throws -> Void)?, logger: Logger) {
        self.arguments = arguments; self.environment = environment; self.pollInterval = pollInterval
        self.current = initial; self.currentKeys = keys
        self.service = service; self.logControl = logControl; self.reloadTLS = reloadTLS; self.logger = logger
    }

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in hangups { await self.reload(trigger: "SIGHUP") }
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: self.pollInterval)
                        if !Task.isCancelled { await self.reload(trigger: nil) }
                    }
                }
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// `trigger` nil is the periodic check, which logs only when something changed.
    func reload(trigger: String?) async {
        var changes: [String] = []
        if trigger == "SIGHUP", let reloadTLS {
            do {
                try reloadTLS()
                changes.append("TLS certificate and key re-read")
            } catch {
                logger.error("SIGHUP: keeping the current TLS certificate: \(error)")
            }
        }
        let resolved: ResolvedSettings
        let keys: [String]
        do {
            resolved = try await SettingsLoader.resolve(try ParsedCommandLine(arguments), environment: environment)
            keys = try resolved.options.effectiveAPIKeys()
        } catch {
            let message = "\(error)"
            let repeated = lock.withLock { defer { lastError = message }; return lastError == message }
            if !repeated || trigger != nil {
                logger.error("settings not reloaded, keeping the current ones: \(message)", metadata: trigger.map { ["trigger": "\($0)"] } ?? [:])
            }
            return
        }
        let (previous, previousKeys): (ServerOptions, [String]) = lock.withLock {
            defer { current = resolved.options; currentKeys = keys; lastError = nil }
            return (current, currentKeys)
        }
        if keys != previousKeys {
            logControl.setSecrets(keys)
            service.replaceAPIKeys(keys)
            changes.append("API keys (\(keys.count) now)")
        }
        if resolved.options.logLevel != previous.logLevel, let level = Logger.Level(rawValue: resolved.options.logLevel) {
            logControl.level = level
            changes.append("logging.level \(previous.logLevel) -> \(level)")
        }
        for setting in SettingsTable.all where !setting.isReloadable && setting.value(resolved.options) != setting.value(previous) {
            logger.warning("\(setting.key) changed in \(resolved.sources[setting.key] ?? .defaultValue); it applies after a restart")
        }
        if !changes.isEmpty {
            logger.notice("settings reloaded: \(changes.joined(separator: ", "))", metadata: ["trigger": "\(trigger ?? "file change")"])
        } else if let trigger {
            logger.info("settings reloaded: nothing changed", metadata: ["trigger": "\(trigger)"])
        }
    }
}
