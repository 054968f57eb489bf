import HTTPServer

// MARK: - The route table
// Every endpoint once: how it is reached, who may call it, where its work runs, how it is answered and
// how it is documented. The router and `/openapi.json` are both built from `InferenceService.endpoints`.

/// Who may call an endpoint when API keys are configured.
enum EndpointAccess: Sendable {
    case open
    case apiKey
    /// Open unless `metrics_require_key` is set.
    case metrics
}

/// How an endpoint answers.
enum EndpointAnswer: Sendable {
    /// From the service alone (probes, metrics, documents), on the calling thread.
    case service(@Sendable (InferenceService) -> HTTPResponse)
    /// With the loaded model (503 before it is ready). `heavy` work, in proportion to the input, runs on
    /// the request-work executor; `whileDraining` lets it run after SIGTERM.
    case model(heavy: Bool, whileDraining: Bool, @Sendable (ModelCall) async -> HTTPResponse)
}

/// What a model endpoint is given.
struct ModelCall: Sendable {
    var context: ServingContext
    var request: HTTPRequest
    var match: RouteMatch
    var service: InferenceService
}

/// One endpoint.
struct Endpoint: Sendable {
    var method: String
    /// The router's pattern (`/v1/models/{model...}`).
    var pattern: String
    var access: EndpointAccess
    var answer: EndpointAnswer
    var documentation: OperationDocumentation

    /// The pattern as OpenAPI writes it, also the `endpoint` label of the metrics.
    var documentedPath: String { pattern.replacingOccurrences(of: "...}", with: "}") }
}

extension InferenceService {
    static let endpoints: [Endpoint] = [
        Endpoint(method: "POST", pattern: "/v1/completions", access: .apiKey,
                 answer: .model(heavy: true, whileDraining: false) { call in
                     await CompletionsHandler(context: call.context, limits: call.service.configuration.limits, metrics: call.service.metrics).handle(call.request)
                 },
                 documentation: .completions),
        Endpoint(method: "GET", pattern: "/v1/models", access: .apiKey,
                 answer: .model(heavy: false, whileDraining: true) { call in
                     .json(.object(["object": "list", "data": .array([ModelEndpoints.modelObject(call.context.model, tasks: call.context.tasks?.tasks)])]))
                 },
                 documentation: .listModels),
        Endpoint(method: "GET", pattern: "/v1/models/{model...}", access: .apiKey,
                 answer: .model(heavy: false, whileDraining: true) { call in
                     let id = call.match.parameters["model"] ?? ""
                     guard id == call.context.model.id else { return APIError.modelNotFound(id, served: call.context.model.id).response }
                     return .json(ModelEndpoints.modelObject(call.context.model, tasks: call.context.tasks?.tasks))
                 },
                 documentation: .retrieveModel),
        Endpoint(method: "POST", pattern: "/v1/tokenize", access: .apiKey,
                 answer: .model(heavy: true, whileDraining: true) { TokenizerEndpoints.tokenize($0.request, context: $0.context) },
                 documentation: .tokenize),
        Endpoint(method: "POST", pattern: "/v1/detokenize", access: .apiKey,
                 answer: .model(heavy: true, whileDraining: true) { TokenizerEndpoints.detokenize($0.request, context: $0.context) },
                 documentation: .detokenize),
        taskEndpoint("/v1/embeddings", TaskEndpoints.embeddings, documentation: .embeddings),
        taskEndpoint("/v1/classify", TaskEndpoints.classify, documentation: .classify),
        taskEndpoint("/v1/classify-tokens", TaskEndpoints.classifyTokens, documentation: .classifyTokens),
        taskEndpoint("/v1/answer", TaskEndpoints.answer, documentation: .answer),
        Endpoint(method: "GET", pattern: "/healthz", access: .open, answer: .service { _ in .json(.object(["status": "ok"])) },
                 documentation: .health),
        Endpoint(method: "GET", pattern: "/health", access: .open, answer: .service { _ in .json(.object(["status": "ok"])) },
                 documentation: .healthAlias),
        Endpoint(method: "GET", pattern: "/readyz", access: .open,
                 answer: .service { service in
                     let phase = service.phase
                     return .json(.object(["status": .string(phase.rawValue)]), status: phase == .ready ? 200 : 503)
                 },
                 documentation: .ready),
        Endpoint(method: "GET", pattern: "/metrics", access: .metrics,
                 answer: .service { service in
                     let text = service.metrics.render(backend: service.servingContext?.backend.statistics,
                                                        model: service.servingContext?.model, ready: service.phase == .ready)
                     return HTTPResponse(status: 200, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"], body: .bytes(Array(text.utf8)))
                 },
                 documentation: .metrics),
        Endpoint(method: "GET", pattern: "/openapi.json", access: .open,
                 answer: .service { _ in HTTPResponse(status: 200, headers: ["Content-Type": "application/json"], body: .bytes(OpenAPIDocument.encoded)) },
                 documentation: .openAPI),
    ]

    private static func taskEndpoint(_ path: String, _ handler: @escaping TaskEndpoints.Handler,
                                     documentation: OperationDocumentation) -> Endpoint {
        Endpoint(method: "POST", pattern: path, access: .apiKey,
                 answer: .model(heavy: true, whileDraining: true) { call in
                     guard let tasks = call.context.tasks else { return APIError.notFound("This server does not serve \(path).").response }
                     return await TaskEndpoints.respond(call.request, context: tasks, handler)
                 },
                 documentation: documentation)
    }
}
