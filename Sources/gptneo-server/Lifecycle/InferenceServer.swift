import Batcher
import Foundation
import GPTNeo
import HTTPServer
import InferenceAPI
import Logging
import ServiceLifecycle
import UnixSignals

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
            "no --model given and the bundled default model (\(DefaultModel.relativePath)) was not found next to the sources, the working directory, the executable or its ../share/gptneo-server"
        case .noSuchModelDirectory(let path): "model directory \(path) does not exist or is not a directory (nor an OWNER/NAME repo id for the Hugging Face cache)"
        case .cannotLoad(let directory, let reason): "cannot load the model in \(directory): \(reason)"
        case .cannotListen(let reason): reason
        case .warmUp(let reason): reason
        }
    }
}

// MARK: - The server's life

/// The process's one lifecycle, run by a `ServiceGroup`: bind the port (so a busy port fails at once
/// and /readyz answers 503 while loading), load the checkpoint, warm up, serve until graceful shutdown
/// (SIGTERM/SIGINT), then drain: /readyz turns 503 at once, the listener closes after the drain delay,
/// in-flight requests get the grace period, and `run` returns (the process exits 0). A shutdown while
/// the model loads returns without waiting for the load.
struct InferenceServer: Service {
    let options: ServerOptions
    let modelDirectory: URL
    /// The repo id when the model came from the Hugging Face cache: the default model name.
    let repoID: String?
    let service: InferenceService
    /// Not listening until `run`; the settings reloader asks it to re-read its TLS files.
    let server: HTTPServer
    let logger: Logger

    init(options: ServerOptions, modelDirectory: URL, repoID: String? = nil, apiKeys: [String], logger: Logger) {
        self.options = options
        self.modelDirectory = modelDirectory
        self.repoID = repoID
        self.logger = logger
        var api = APIConfiguration()
        api.apiKeys = apiKeys
        api.metricsRequireKey = options.metricsRequireKey
        api.limits.generation.maxChoices = options.maxChoices
        api.limits.maxTotalChoices = max(api.limits.maxTotalChoices, options.maxChoices)
        api.limits.maxResponseBytes = options.maxResponseBytes
        let service = InferenceService(configuration: api, logger: logger)
        self.service = service
        var http = Self.httpConfiguration(options)
        http.onServerAnswer = { [metrics = service.metrics] answer in metrics.countServerAnswer(answer) }
        self.server = HTTPServer(configuration: http, logger: logger, handler: { await service.handle($0) })
    }

    func run() async throws {
        // A second SIGTERM/SIGINT ends the drain at once, as nginx and uvicorn do, with the shell's
        // code for death by that signal (the first one is the ServiceGroup's graceful shutdown).
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let logger = self.logger
        let secondSignal = Task {
            var seen = 0
            for await signal in signals {
                seen += 1
                guard seen > 1 else { continue }
                logger.warning("signal \(signal) during the drain: exiting without waiting for in-flight requests")
                exit(128 + signal.rawValue)
            }
        }
        defer { secondSignal.cancel() }

        let service = self.service
        let port: Int
        do { port = try server.start() } catch { throw StartupError.cannotListen("\(error)") }
        // The thread count is worth a line: by default it follows the CPU affinity and cgroup quota, which
        // an operator sizing a container wants to see applied.
        logger.info("loading the model from \(modelDirectory.path) threads=\(batcherConfiguration.threads)\(options.threads == nil ? " (the CPUs this process may use)" : "")")

        // Load and warm-up times on the ready line: what an operator compares when starts get slower
        // (a bigger model, a colder page cache, a host slow to commit fresh memory).
        let clock = ContinuousClock()
        let loadStarted = clock.now
        let context: ServingContext
        do {
            context = try await cancelWhenGracefulShutdown { try await load() }
        } catch is CancellationError {
            logger.info("shutdown requested while loading: stopping")
            await server.shutdown()
            return
        } catch {
            await server.shutdown()
            throw error
        }
        // Before the warm-up, so that the code it runs (the code serving runs) is resident at readiness.
        StartupPages.release()
        let warmUpStarted = clock.now
        do {
            try await service.start(with: context)
        } catch {
            await server.shutdown()
            throw StartupError.warmUp("\(error)")
        }
        let scheme = options.tlsCert == nil ? "http" : "https"
        let seconds = { (duration: Duration) in String(format: "%.3f", duration / .seconds(1)) }
        logger.info("ready: serving '\(context.model.id)' on \(scheme)://\(options.host):\(port); tasks: \(context.tasks?.tasks.joined(separator: ", ") ?? "text-generation")",
                    metadata: ["load_seconds": "\(seconds(warmUpStarted - loadStarted))", "warm_up_seconds": "\(seconds(clock.now - warmUpStarted))"])

        // Until SIGTERM/SIGINT; cancellation (a failing sibling service) also ends serving.
        try? await gracefulShutdown()
        logger.info("draining: /readyz answers 503; the listener closes in \(formatNumber(options.drainDelaySeconds)) s")
        service.beginDraining()
        try? await Task.sleep(for: .milliseconds(Int(options.drainDelaySeconds * 1000)))
        await server.shutdown()
        await context.backend.shutdown(gracePeriod: .milliseconds(Int(options.shutdownGraceSeconds * 1000)))
        logger.info("drained: exiting")
    }

    static func httpConfiguration(_ options: ServerOptions) -> HTTPServerConfiguration {
        var http = HTTPServerConfiguration()
        http.host = options.host
        http.port = options.port
        if let certificate = options.tlsCert, let key = options.tlsKey {
            http.tls = TLSConfiguration(certificateChainFile: certificate, privateKeyFile: key)
        }
        http.maxConnections = options.maxConnections
        http.maxConnectionsPerClient = options.maxConnectionsPerClient
        http.maxConcurrentStreams = options.maxConcurrentStreams
        http.maxBodyBytes = options.maxBodyBytes
        http.maxHeaderBytes = options.maxHeaderBytes
        http.firstByteTimeout = .milliseconds(Int(options.firstByteTimeoutSeconds * 1000))
        http.headTimeout = .milliseconds(Int(options.headTimeoutSeconds * 1000))
        http.bodyTimeout = .milliseconds(Int(options.bodyTimeoutSeconds * 1000))
        http.idleTimeout = .milliseconds(Int(options.idleTimeoutSeconds * 1000))
        http.writeTimeout = .milliseconds(Int(options.sendTimeoutSeconds * 1000))
        http.minSendBytes = options.minSendBytes
        http.shutdownGracePeriod = .milliseconds(Int(options.shutdownGraceSeconds * 1000))
        http.accessLogLevel = Logger.Level(rawValue: options.accessLogLevel) ?? .info
        http.makeErrorResponse = { status, message in InferenceService.errorResponse(status: status, message: message) }
        return http
    }

    var weightSettings: WeightSettings { WeightSettings(dtype: options.dtype, quantization: options.quantization, hugePages: options.hugePages) }

    var batcherConfiguration: BatcherConfiguration {
        var batcher = BatcherConfiguration()
        batcher.maxQueuedRequests = options.maxQueuedRequests
        batcher.maxRunningSequences = options.maxRunningSequences
        batcher.kvCacheBudgetBytes = options.kvCacheMiB << 20
        batcher.prefillChunkTokens = options.prefillChunkTokens
        batcher.maxPrefillTokensPerStep = options.maxPrefillTokensPerStep
        batcher.admissionWindow = .milliseconds(options.admissionWindowMilliseconds)
        batcher.idleBeforeReleasingCacheMemory = .milliseconds(Int(options.kvCacheKeepIdleSeconds * 1000))
        batcher.limits = service.configuration.limits.generation
        if let threads = options.threads { batcher.threads = threads }
        return batcher
    }

    /// Loads on a Dispatch thread so the HTTP server keeps answering /healthz and /readyz; returns
    /// early with `CancellationError` when cancelled (the load itself runs on and is abandoned).
    private func load() async throws -> ServingContext {
        let directory = modelDirectory
        let modelName = options.modelName ?? repoID
        let batcher = batcherConfiguration
        let weights = weightSettings
        var taskLimits = TaskLimits()
        taskLimits.maxResponseBytes = options.maxResponseBytes
        let tasks = TaskOptions(headsConfiguration: options.heads.map { URL(fileURLWithPath: $0) },
                                embeddings: EmbeddingConfiguration(pooling: EmbeddingPooling(rawValue: options.embeddingPooling) ?? .mean,
                                                                   normalize: options.normalizeEmbeddings),
                                limits: taskLimits)
        let outcome = OneShot<ServingContext>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                outcome.attach(continuation)
                DispatchQueue.global().async {
                    outcome.resolve(Result {
                        do {
                            return try ServingContext.load(directory: directory, modelName: modelName, batcher: batcher,
                                                           weights: weights, tasks: tasks)
                        } catch {
                            throw StartupError.cannotLoad(directory: directory.path, reason: (error as? ModelLoadingError)?.reason ?? "\(error)")
                        }
                    })
                }
            }
        } onCancel: {
            outcome.resolve(.failure(CancellationError()))
        }
    }
}

/// A continuation resumed by whichever comes first: the result or a cancellation.
private final class OneShot<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Value, any Error>?
    private var early: Result<Value, any Error>?
    private var done = false

    func attach(_ continuation: CheckedContinuation<Value, any Error>) {
        let ready: Result<Value, any Error>? = lock.withLock {
            if let early { done = true; return early }
            self.continuation = continuation
            return nil
        }
        if let ready { continuation.resume(with: ready) }
    }

    func resolve(_ result: Result<Value, any Error>) {
        let waiting: CheckedContinuation<Value, any Error>? = lock.withLock {
            guard !done else { return nil }
            guard let continuation else { if early == nil { early = result }; return nil }
            done = true
            self.continuation = nil
            return continuation
        }
        waiting?.resume(with: result)
    }
}
