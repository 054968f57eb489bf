import Batcher
import Foundation
import GPTNeo
import HTTPServer
import InferenceAPI
import Logging
import Tokenizer

// MARK: - Startup failures

enum StartupError: Error, CustomStringConvertible {
    case noDefaultModel
    case noSuchModelDirectory(String)
    case cannotLoad(directory: String, reason: String)
    case cannotListen(String)
    case warmUp(String)

    var description: String {
        switch self {
        case .noDefaultModel:
            "no --model given and the bundled default model (\(DefaultModel.relativePath)) was not found next to the sources, the working directory or the executable"
        case .noSuchModelDirectory(let path): "model directory \(path) does not exist or is not a directory (nor an OWNER/NAME repo id for the Hugging Face cache)"
        case .cannotLoad(let directory, let reason): "cannot load the model in \(directory): \(reason)"
        case .cannotListen(let reason): reason
        case .warmUp(let reason): reason
        }
    }
}

// MARK: - Wiring

/// Starts the pieces in order: bind the port (so a busy port fails at once and /readyz answers 503
/// while loading), load the checkpoint and tokenizer, start the batcher, warm up, serve until
/// SIGTERM/SIGINT, then drain and exit 0.
struct ServerRunner {
    let options: ServerOptions
    let sourceFile: String

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: options.logLevel) ?? .info
            return handler
        }
        let logger = Logger(label: "gptneo-server")
        let (directory, repoID) = try modelDirectory()

        var api = APIConfiguration()
        api.apiKeys = options.apiKeys
        api.metricsRequireKey = options.metricsRequireKey
        api.limits.generation.maxChoices = options.maxChoices
        api.limits.maxTotalChoices = max(api.limits.maxTotalChoices, options.maxChoices)
        api.limits.maxResponseBytes = options.maxResponseBytes
        let service = InferenceService(configuration: api, logger: logger)

        var http = HTTPServerConfiguration()
        http.host = options.host
        http.port = options.port
        if let certificate = options.tlsCert, let key = options.tlsKey {
            http.tls = TLSConfiguration(certificateChainFile: certificate, privateKeyFile: key)
        }
        http.maxBodyBytes = options.maxBodyBytes
        http.maxConnections = options.maxConnections
        http.maxConnectionsPerClient = options.maxConnectionsPerClient
        http.maxConcurrentStreams = options.maxConcurrentStreams
        http.firstByteTimeout = .milliseconds(Int(options.firstByteTimeoutSeconds * 1000))
        http.writeTimeout = .milliseconds(Int(options.sendTimeoutSeconds * 1000))
        http.minSendBytes = options.minSendBytes
        http.shutdownGracePeriod = .seconds(options.shutdownGraceSeconds)
        http.makeErrorResponse = { status, message in InferenceService.errorResponse(status: status, message: message) }
        http.onServerAnswer = { [metrics = service.metrics] answer in metrics.countServerAnswer(answer) }
        let server = HTTPServer(configuration: http, logger: logger, handler: { await service.handle($0) })
        let port: Int
        do { port = try server.start() } catch { throw StartupError.cannotListen("\(error)") }
        let scheme = http.tls == nil ? "http" : "https"
        logger.info("listening on \(scheme)://\(options.host):\(port), loading \(directory.path)")
        // SIGHUP re-reads the certificate and key; a bad pair keeps the current one.
        let reloads = SignalWatcher([SIGHUP]) { _, _ in
            do { try server.reloadTLS() } catch { logger.error("SIGHUP: keeping the current TLS certificate: \(error)") }
        }
        if http.tls != nil { reloads.start() }

        // Signals are watched from the start: a SIGTERM while loading also exits cleanly. A second
        // one during the drain exits at once, as nginx and uvicorn do, with the shell's code for
        // death by that signal.
        let backendBox = BackendBox()
        let grace = Duration.seconds(options.shutdownGraceSeconds)
        let drainDelay = Duration.milliseconds(Int(options.drainDelaySeconds * 1000))
        let signals = SignalWatcher([SIGTERM, SIGINT]) { signal, count in
            guard count == 1 else {
                logger.warning("signal \(signal) during the drain: exiting without waiting for in-flight requests")
                exit(128 + signal)
            }
            logger.info("signal \(signal): draining")
            service.beginDraining()
            Task {
                // Readiness is 503 now; keep accepting a moment so probes see it, then stop listening.
                try? await Task.sleep(for: drainDelay)
                await server.shutdown()
                await backendBox.backend?.shutdown(gracePeriod: grace)
                logger.info("stopped")
                exit(0)
            }
        }
        signals.start()

        var batcherConfiguration = BatcherConfiguration()
        batcherConfiguration.maxQueuedRequests = options.maxQueuedRequests
        batcherConfiguration.maxRunningSequences = options.maxRunningSequences
        batcherConfiguration.kvCacheBudgetBytes = options.kvCacheMiB << 20
        batcherConfiguration.limits = api.limits.generation
        if let threads = options.threads { batcherConfiguration.threads = threads }
        let context = try await load(directory, modelName: options.modelName ?? repoID, batcher: batcherConfiguration)
        backendBox.backend = context.backend
        do {
            try await service.start(with: context)
        } catch {
            // A signal while loading: the service is draining, and the drain ends the process (exit 0).
            if service.phase == .draining { await waitForExit() }
            throw StartupError.warmUp("\(error)")
        }
        logger.info("ready: serving '\(context.model.id)' on \(scheme)://\(options.host):\(port); tasks: \(context.tasks?.tasks.joined(separator: ", ") ?? "text-generation")")
        await waitForExit()
    }

    /// Serves until a signal handler exits the process.
    private func waitForExit() async -> Never {
        while true { try? await Task.sleep(for: .seconds(3600)) }
    }

    /// The checkpoint directory, and the repo id when `--model` named one found in the Hugging Face cache.
    private func modelDirectory() throws -> (URL, repoID: String?) {
        guard let path = options.model else {
            guard let found = DefaultModel.locate(sourceFile: sourceFile) else { throw StartupError.noDefaultModel }
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

    /// Loads off the cooperative pool so the HTTP server keeps answering /healthz and /readyz.
    private func load(_ directory: URL, modelName: String?, batcher: BatcherConfiguration) async throws -> ServingContext {
        var taskLimits = TaskLimits()
        taskLimits.maxResponseBytes = options.maxResponseBytes
        let tasks = TaskOptions(headsConfiguration: options.heads.map { URL(fileURLWithPath: $0) },
                                embeddings: EmbeddingConfiguration(pooling: EmbeddingPooling(rawValue: options.embeddingPooling) ?? .mean,
                                                                   normalize: options.normalizeEmbeddings),
                                limits: taskLimits)
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                do {
                    continuation.resume(returning: try ServingContext.load(directory: directory, modelName: modelName, batcher: batcher, tasks: tasks))
                } catch {
                    continuation.resume(throwing: StartupError.cannotLoad(directory: directory.path, reason: (error as? ModelLoadingError)?.reason ?? "\(error)"))
                }
            }
        }
    }
}

/// The backend, once loaded, for the signal task.
private final class BackendBox: @unchecked Sendable {
    private let lock = NSLock()
    private var _backend: (any CompletionBackend)?
    var backend: (any CompletionBackend)? {
        get { lock.withLock { _backend } }
        set { lock.withLock { _backend = newValue } }
    }
}
