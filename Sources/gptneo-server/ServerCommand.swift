import Foundation
import InferenceAPI
import Logging
import ServiceLifecycle

// MARK: - Entry point

/// `gptneo-server [--config FILE] [--check-config] [--SETTING VALUE ...]`: resolves the settings
/// (flags > `GPTNEO_*` environment > YAML file > defaults; see `SettingsTable`), then either prints
/// help, prints the checked configuration, or runs the server's lifecycle until it has drained.
@main
enum ServerCommand {
    static func main() async {
        let code = await run(arguments: Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
        exit(code)
    }

    /// The exit status: 0 after --help, --check-config or a drained shutdown; 1 for any startup
    /// failure, reported as one `gptneo-server: error: ...` line on stderr.
    static func run(arguments: [String], environment: [String: String]) async -> Int32 {
        do {
            let commandLine = try ParsedCommandLine(arguments)
            if commandLine.action == .help {
                print(HelpText.render(), terminator: "")
                return 0
            }
            let resolved = try await SettingsLoader.resolve(commandLine, environment: environment)
            let keys = try resolved.options.effectiveAPIKeys()
            if commandLine.action == .checkConfig {
                let fromFile = try resolved.options.apiKeysFile.map { path throws(APIKeyFile.ReadError) in try APIKeyFile(path: path).read().count }
                print(CheckConfigReport.render(resolved, apiKeysFromFile: fromFile), terminator: "")
                return 0
            }
            try await serve(resolved, apiKeys: keys, arguments: arguments, environment: environment)
            return 0
        } catch {
            FileHandle.standardError.write(Data("gptneo-server: error: \(error)\n".utf8))
            return 1
        }
    }

    private static func serve(_ resolved: ResolvedSettings, apiKeys: [String], arguments: [String], environment: [String: String]) async throws {
        let options = resolved.options
        let logControl = LogControl(level: Logger.Level(rawValue: options.logLevel) ?? .info,
                                    format: LogControl.Format(rawValue: options.logFormat) ?? .text)
        logControl.setSecrets(apiKeys)
        LoggingSystem.bootstrap { label in ServerLogHandler(label: label, control: logControl) }
        let logger = Logger(label: "gptneo-server")
        for warning in resolved.warnings { logger.warning("\(warning)") }
        if !apiKeys.isEmpty { logger.info("API keys: \(apiKeys.count) accepted") }

        let server = InferenceServer(options: options, modelDirectory: try modelDirectory(options), apiKeys: apiKeys, logger: logger)
        let http = server.server
        let reloadTLS: (@Sendable () throws -> Void)? = options.tlsCert == nil ? nil : { @Sendable in try http.reloadTLS() }
        let reloader = SettingsReloader(arguments: arguments, environment: environment, initial: options, keys: apiKeys,
                                        pollInterval: .seconds(2), service: server.service, logControl: logControl,
                                        reloadTLS: reloadTLS, logger: logger)
        // Shut down in reverse order: the reloader stops first, then the server drains.
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: server), .init(service: reloader)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }

    private static func modelDirectory(_ options: ServerOptions) throws -> URL {
        guard let path = options.model else {
            guard let found = DefaultModel.locate(sourceFile: #filePath) else { throw StartupError.noDefaultModel }
            return found
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw StartupError.noSuchModelDirectory(path)
        }
        return URL(fileURLWithPath: path).standardizedFileURL
    }
}
