import Batcher

// MARK: - Routes

/// Every path the API serves. Matching by exact path keeps 404 and 405 answers in our error shape.
enum Route: Equatable {
    case completions, models, model(String), tokenize, detokenize, health, ready, metrics, openAPI
    /// /v1/classify, /v1/classify-tokens, /v1/answer, /v1/embeddings (Tasks/TaskEndpoints.swift).
    case task(String)

    var method: String {
        switch self {
        case .completions, .tokenize, .detokenize, .task: "POST"
        default: "GET"
        }
    }

    /// Answered from memory in microseconds (probes, metrics, documents); every other route runs on
    /// the request-work executor.
    var isCheap: Bool {
        switch self {
        case .health, .ready, .metrics, .openAPI, .models, .model: true
        case .completions, .tokenize, .detokenize, .task: false
        }
    }

    /// The `endpoint` label of the metrics (bounded: a model id becomes the route pattern).
    var endpoint: String {
        switch self {
        case .completions: "/v1/completions"
        case .models: "/v1/models"
        case .model: "/v1/models/{model}"
        case .tokenize: "/v1/tokenize"
        case .detokenize: "/v1/detokenize"
        case .health: "/healthz"
        case .ready: "/readyz"
        case .metrics: "/metrics"
        case .openAPI: "/openapi.json"
        case .task(let path): path
        }
    }
}

enum Routes {
    static func match(_ path: String) -> Route? {
        switch path {
        case "/v1/completions": return .completions
        case "/v1/models": return .models
        case "/v1/tokenize": return .tokenize
        case "/v1/detokenize": return .detokenize
        case "/healthz", "/health": return .health
        case "/readyz": return .ready
        case "/metrics": return .metrics
        case "/openapi.json": return .openAPI
        default:
            if TaskEndpoints.paths.contains(path) { return .task(path) }
            let prefix = "/v1/models/"
            if path.hasPrefix(prefix), path.count > prefix.count {
                let id = String(path.dropFirst(prefix.count))
                return .model(id.removingPercentEncoding ?? id)
            }
            return nil
        }
    }

    /// Keeps the metrics' `method` label bounded whatever clients send.
    static func methodLabel(_ method: String) -> String {
        ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"].contains(method) ? method : "other"
    }
}

enum GenerationParametersFactory {
    static func greedy(maxTokens: Int) -> GenerationParameters {
        var p = GenerationParameters()
        p.maxTokens = maxTokens
        p.temperature = 0
        return p
    }
}
