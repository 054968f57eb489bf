import Foundation
import HTTPServer
import Logging

// MARK: - Configuration

/// What the API layer needs to know (the executable builds it from `ServerOptions`).
public struct APIConfiguration: Sendable {
    /// Accepted `Authorization: Bearer` keys; empty means no authentication.
    public var apiKeys: [String] = []
    /// Put `/metrics` behind the keys too.
    public var metricsRequireKey = false
    public var limits = CompletionLimits()
    public init() {}
}

/// The loaded model as the handlers see it.
public struct ServingContext: Sendable {
    public var backend: any CompletionBackend
    public var tokenizer: any TextTokenizer
    public var model: ModelDescription
    /// Classification, QA and embeddings on the same body; nil serves generation only.
    public var tasks: TaskServingContext?
    public init(backend: any CompletionBackend, tokenizer: any TextTokenizer, model: ModelDescription, tasks: TaskServingContext? = nil) {
        self.backend = backend; self.tokenizer = tokenizer; self.model = model; self.tasks = tasks
    }
}

// MARK: - Lifecycle

/// The service's life: `/readyz` is 200 only in `ready`; `/v1/*` answers 503 outside it.
public enum ServicePhase: String, Sendable {
    /// The model is loading (or failed to).
    case loading
    /// Loaded; the warm-up forward pass is running.
    case warmingUp
    case ready
    /// Shutdown has begun: in-flight requests finish, new generation is refused.
    case draining
}

public enum ServiceError: Error, Equatable, CustomStringConvertible {
    case illegalTransition(from: ServicePhase, to: ServicePhase)
    case warmUpFailed(String)
    public var description: String {
        switch self {
        case .illegalTransition(let from, let to): "cannot go from \(from.rawValue) to \(to.rawValue)"
        case .warmUpFailed(let reason): "warm-up forward pass failed: \(reason)"
        }
    }
}

// MARK: - The service

/// The whole HTTP API as one `HTTPRequest → HTTPResponse` function: routing, API keys, readiness,
/// metrics. Testable without sockets; the executable hands `handle` to the HTTP server.
public final class InferenceService: Sendable {
    public let configuration: APIConfiguration
    public let metrics: APIMetrics
    let logger: Logger
    /// Where the endpoints that do work in proportion to their input run (not where probes run).
    let work: any TaskExecutor
    private struct State { var phase: ServicePhase = .loading; var context: ServingContext? }
    private let state = Locked(State())

    public init(configuration: APIConfiguration, metrics: APIMetrics = APIMetrics(), logger: Logger = Logger(label: "gptneo.api"),
                work: any TaskExecutor = RequestWorkExecutor.shared) {
        self.configuration = configuration; self.metrics = metrics; self.logger = logger; self.work = work
    }

    /// Where the service is in its life (what `/readyz` reports).
    public var phase: ServicePhase { state.withLock { $0.phase } }

    /// The model is loaded: warm it up with one short generation, then become ready.
    public func start(with context: ServingContext) async throws {
        try transition(to: .warmingUp) { $0.context = context }
        do {
            try await Self.warmUp(context)
        } catch {
            throw ServiceError.warmUpFailed(String(describing: error))
        }
        try transition(to: .ready)
    }

    /// Readiness turns 503 and new generation is refused; in-flight requests go on.
    public func beginDraining() {
        state.withLock { $0.phase = .draining }
    }

    private func transition(to next: ServicePhase, _ update: (inout State) -> Void = { _ in }) throws {
        try state.withLock { s in
            let allowed = switch (s.phase, next) {
            case (.loading, .warmingUp), (.warmingUp, .ready): true
            default: false
            }
            guard allowed else { throw ServiceError.illegalTransition(from: s.phase, to: next) }
            s.phase = next
            update(&s)
        }
    }

    /// One forward pass through the whole stack (batcher, engine, sampler) before taking traffic.
    static func warmUp(_ context: ServingContext) async throws {
        let tokens = context.tokenizer.encode("Hello", allowSpecialTokens: false)
        var parameters = GenerationParametersFactory.greedy(maxTokens: 1)
        parameters.ignoreEOS = true
        let stream = try context.backend.submit(.init(promptTokens: tokens.isEmpty ? [0] : tokens, parameters: parameters))
        for try await _ in stream {}
    }

    // MARK: Handling

    /// Answers one request: the `HTTPHandler` the executable gives the HTTP server. Never fails:
    /// every problem becomes an OpenAI-shaped error response; 5xx ones are logged.
    public func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let started = ContinuousClock.now
        let route = Routes.match(request.path)
        var response = if route?.isCheap ?? true {
            await dispatch(request, route: route)
        } else {
            await withTaskExecutorPreference(work) { await dispatch(request, route: route) }
        }
        if response.status >= 500 && response.status != 503, case .bytes(let body) = response.body {
            logger.error("\(request.method) \(request.path) failed", metadata: [
                "status": "\(response.status)", "request_id": "\(request.requestID)", "body": "\(String(decoding: body.prefix(500), as: UTF8.self))",
            ])
        }
        let labels = [route?.endpoint ?? "other", Routes.methodLabel(request.method), String(response.status)]
        metrics.requests.increment(labels)
        let endpoint = labels[0]
        response.headers.replaceOrAdd(name: "X-Request-Id", value: request.requestID)
        switch response.body {
        case .bytes:
            metrics.requestDuration.observe((ContinuousClock.now - started).seconds, [endpoint])
        case .stream(let produce):
            // A streamed response lasts until its last event: time it from inside the stream.
            let metrics = self.metrics, work = self.work
            response.body = .stream { writer in
                defer { metrics.requestDuration.observe((ContinuousClock.now - started).seconds, [endpoint]) }
                try await withTaskExecutorPreference(work) { try await produce(writer) }
            }
        }
        return response
    }

    private func dispatch(_ request: HTTPRequest, route: Route?) async -> HTTPResponse {
        let isAPI = request.path.hasPrefix("/v1/") || request.path == "/v1"
        if isAPI || (route == .metrics && configuration.metricsRequireKey), !authorized(request) {
            return APIError.unauthorized.response
        }
        guard let route else { return APIError.notFound("No route for \(quotedPrefix(request.path, limit: 100)).").response }
        let method = request.method == "HEAD" ? "GET" : request.method
        guard method == route.method else {
            var response = APIError.methodNotAllowed("\(request.method) is not allowed on \(quotedPrefix(request.path, limit: 100)); use \(route.method).").response
            response.headers.add(name: "Allow", value: route.method == "GET" ? "GET, HEAD" : route.method)
            return response
        }
        let (phase, context) = state.withLock { ($0.phase, $0.context) }
        switch route {
        case .health: return .json(.object(["status": "ok"]))
        case .ready:
            return .json(.object(["status": .string(phase.rawValue)]), status: phase == .ready ? 200 : 503)
        case .metrics:
            let text = metrics.render(backend: context?.backend.statistics, ready: phase == .ready)
            return HTTPResponse(status: 200, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"], body: .bytes(Array(text.utf8)))
        case .openAPI:
            return HTTPResponse(status: 200, headers: ["Content-Type": "application/json"], body: .bytes(Array(OpenAPIDocument.json.utf8)))
        default:
            break
        }
        guard let context, phase == .ready || (phase == .draining && route != .completions) else {
            return APIError.unavailable(phase == .draining ? "The server is shutting down." : "The model is \(phase == .loading ? "loading" : "warming up"); retry shortly.").response
        }
        switch route {
        case .completions:
            return await CompletionsHandler(context: context, limits: configuration.limits, metrics: metrics).handle(request)
        case .models:
            return .json(.object(["object": "list", "data": .array([ModelEndpoints.modelObject(context.model, tasks: context.tasks?.tasks)])]))
        case .model(let id):
            guard id == context.model.id else {
                return APIError.modelNotFound(id, served: context.model.id).response
            }
            return .json(ModelEndpoints.modelObject(context.model, tasks: context.tasks?.tasks))
        case .tokenize: return TokenizerEndpoints.tokenize(request, context: context)
        case .detokenize: return TokenizerEndpoints.detokenize(request, context: context)
        case .task:
            guard let tasks = context.tasks, let response = await TaskEndpoints.handle(request, context: tasks) else {
                return APIError.notFound("This server does not serve \(request.path).").response
            }
            return response
        case .health, .ready, .metrics, .openAPI: preconditionFailure("answered above")
        }
    }

    // MARK: API keys

    private func authorized(_ request: HTTPRequest) -> Bool {
        guard !configuration.apiKeys.isEmpty else { return true }
        guard let header = request.headers["Authorization"] else { return false }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
        let presented = Array(parts[1].trimmingCharacters(in: .whitespaces).utf8)
        // Check every key without stopping early, so timing says nothing about which matched.
        var matched = false
        for key in configuration.apiKeys { matched = constantTimeEquals(presented, Array(key.utf8)) || matched }
        return matched
    }
}

/// Equality whose running time depends only on the lengths, not on where the bytes differ.
func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(a.count == b.count ? 0 : 1)
    let length = max(a.count, b.count)
    for i in 0..<length {
        let x = i < a.count ? a[i] : 0
        let y = i < b.count ? b[i] : 0
        difference |= x ^ y
    }
    return difference == 0
}
