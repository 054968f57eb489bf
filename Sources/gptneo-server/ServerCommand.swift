import Foundation
import GPTNeo
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
        if arguments.first == "convert" {
            // Its own arguments and help (swift-argument-parser); exits non-zero by itself on failure.
            ConvertCommand.main(Array(arguments.dropFirst()))
            return 0
        }
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

        let (directory, repoID) = try modelDirectory(options)
        let server = InferenceServer(options: options, modelDirectory: directory, repoID: repoID, apiKeys: apiKeys, logger: logger)
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

    /// The checkpoint directory, and the repo id when `model.path` named one found in the Hugging Face cache.
    private static func modelDirectory(_ options: ServerOptions) throws -> (URL, repoID: String?) {
        guard let path = options.model else {
            guard let found = DefaultModel.locate(sourceFile: #filePath) else { throw StartupError.noDefaultModel }
            return (found, nil)
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            return (URL(fileURLWithPath: path).standardizedFileURL, nil)
        }
        guard HubCache.isRepoID(path) else { throw StartupError.noSuchModelDirectory(path) }
        let snapshot = try HubCache.snapshot(repoID: path, revision: options.revision, environment: ProcessInfo.processInfo.environment)
        return (snapshot, path)
    }
}
