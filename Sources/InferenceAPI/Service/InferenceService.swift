import Batcher
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
    /// `tokenizer.longestTokenBytes`, computed once.
    public var longestTokenBytes: Int
    public init(backend: any CompletionBackend, tokenizer: any TextTokenizer, model: ModelDescription, tasks: TaskServingContext? = nil) {
        self.backend = backend; self.tokenizer = tokenizer; self.model = model; self.tasks = tasks
        longestTokenBytes = tokenizer.longestTokenBytes
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

/// The whole HTTP API as one `HTTPRequest → HTTPResponse` function: the router built from
/// `InferenceService.endpoints` with request ids, metrics and API keys as middleware, and the
/// service's life (loading, ready, draining). Testable without sockets; the executable hands `handle`
/// to the HTTP server.
public final class InferenceService: Sendable {
    public let configuration: APIConfiguration
    public let metrics: APIMetrics
    let logger: Logger
    /// Where the endpoints that do work in proportion to their input run (not where probes run).
    let work: any TaskExecutor
    private struct State { var phase: ServicePhase = .loading; var context: ServingContext? }
    private let state = Locked(State())
    private let router = Locked<HTTPHandler?>(nil)
    /// The accepted keys: `configuration.apiKeys` at first, replaced when the operator rotates them.
    private let apiKeys: Locked<[[UInt8]]>

    public init(configuration: APIConfiguration, metrics: APIMetrics = APIMetrics(), logger: Logger = Logger(label: "gptneo.api"),
                work: any TaskExecutor = RequestWorkExecutor.shared) {
        self.configuration = configuration; self.metrics = metrics; self.logger = logger; self.work = work
        self.apiKeys = Locked(configuration.apiKeys.map { Array($0.utf8) })
    }

    /// Rotation without a restart: requests after this call are checked against `keys` only.
    public func replaceAPIKeys(_ keys: [String]) {
        apiKeys.withLock { $0 = keys.map { Array($0.utf8) } }
    }

    /// Where the service is in its life (what `/readyz` reports).
    public var phase: ServicePhase { state.withLock { $0.phase } }

    /// The loaded model, once there is one.
    var servingContext: ServingContext? { state.withLock { $0.context } }

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
        var parameters = GenerationParameters()
        (parameters.maxTokens, parameters.temperature, parameters.ignoreEOS) = (1, 0, true)
        let stream = try context.backend.submit(.init(promptTokens: tokens.isEmpty ? [0] : tokens, parameters: parameters))
        for try await _ in stream {}
    }

    // MARK: Handling

    /// Answers one request: the `HTTPHandler` the executable gives the HTTP server. Never fails:
    /// every problem becomes an OpenAI-shaped error response; 5xx ones are logged.
    public func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let handler = router.withLock { handler in
            if let handler { return handler }
            let built = makeRouter().handler()
            handler = built
            return built
        }
        return await handler(request)
    }

    /// The router of `endpoints`. It holds the service weakly: the service owns it.
    func makeRouter() -> HTTPRouter {
        var router = HTTPRouter()
        router.makeErrorResponse = { status, message in
            status == 405 ? APIError.methodNotAllowed(message.prefix(1).uppercased() + message.dropFirst() + ".").response
                : APIError.notFound(message.prefix(1).uppercased() + message.dropFirst() + ".").response
        }
        router.use(RequestIDMiddleware())
        router.use(MetricsMiddleware(metrics: metrics, logger: logger))
        let protected = Self.endpoints.filter { endpoint in
            switch endpoint.access {
            case .open: false
            case .apiKey: true
            case .metrics: configuration.metricsRequireKey
            }
        }
        router.use(AuthenticationMiddleware(keys: apiKeys, protectedPatterns: Set(protected.map(\.pattern))))
        for endpoint in Self.endpoints {
            router.add(endpoint.method, endpoint.pattern, route: { [weak self] request, match in
                guard let self else { return APIError.unavailable("The server is shutting down.").response }
                return await self.answer(endpoint.answer, request, match)
            })
        }
        return router
    }

    private func answer(_ answer: EndpointAnswer, _ request: HTTPRequest, _ match: RouteMatch) async -> HTTPResponse {
        switch answer {
        case .service(let respond):
            return respond(self)
        case .model(let heavy, let whileDraining, let respond):
            let (phase, context) = state.withLock { ($0.phase, $0.context) }
            guard let context, phase == .ready || (phase == .draining && whileDraining) else {
                return APIError.unavailable(phase == .draining ? "The server is shutting down." : "The model is \(phase == .loading ? "loading" : "warming up"); retry shortly.").response
            }
            let call = ModelCall(context: context, request: request, match: match, service: self)
            guard heavy else { return await respond(call) }
            var response = await withTaskExecutorPreference(work) { await respond(call) }
            if case .stream(let produce) = response.body {
                let work = self.work
                response.body = .stream { writer in try await withTaskExecutorPreference(work) { try await produce(writer) } }
            }
            return response
        }
    }
}
