import HTTPServer

// MARK: - Errors in OpenAI's shape

/// An error answered as `{"error": {"message", "type", "param", "code"}}`, the shape OpenAI's clients
/// parse. Every failure a client can cause maps to one of these; none becomes a 500.
public struct APIError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var message: String
    /// OpenAI's `type`: `invalid_request_error`, `authentication_error`, ...
    public var type: String
    /// The request field at fault (`max_tokens`, `prompt[1]`), when there is one.
    public var param: String?
    public var code: String?
    /// Seconds for `Retry-After` (429 and 503).
    public var retryAfterSeconds: Int?

    public init(status: Int, message: String, type: String, param: String? = nil, code: String? = nil, retryAfterSeconds: Int? = nil) {
        self.status = status; self.message = message; self.type = type
        self.param = param; self.code = code; self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { "\(status) \(type): \(message)" }

    // MARK: Common cases

    /// 400 naming the field.
    public static func invalidField(_ param: String, _ message: String, code: String? = nil) -> APIError {
        APIError(status: 400, message: message, type: "invalid_request_error", param: param, code: code)
    }
    public static func badRequest(_ message: String, code: String? = nil) -> APIError {
        APIError(status: 400, message: message, type: "invalid_request_error", code: code)
    }
    /// OpenAI's wording, which clients match on; the sum is spelled out only when it is a number.
    /// `promptIsLowerBound`: the prompt was refused by its length in bytes, before tokenization.
    public static func contextLengthExceeded(param: String, promptTokens: Int, maxTokens: Int, contextLength: Int,
                                             promptIsLowerBound: Bool = false) -> APIError {
        let (total, overflow) = promptTokens.addingReportingOverflow(maxTokens)
        let atLeast = promptIsLowerBound ? "at least " : ""
        let requested = overflow ? "more than \(Int.max)" : atLeast + String(total)
        return invalidField(param, "This model's maximum context length is \(contextLength) tokens. However, you requested \(requested) tokens (\(atLeast)\(promptTokens) in the prompt, \(maxTokens) for the completion). Please reduce the prompt or 'max_tokens'.", code: "context_length_exceeded")
    }
    public static let unauthorized = APIError(
        status: 401, message: "Incorrect or missing API key. Send it as 'Authorization: Bearer KEY'.",
        type: "authentication_error", code: "invalid_api_key")
    public static func notFound(_ message: String, code: String? = "not_found") -> APIError {
        APIError(status: 404, message: message, type: "invalid_request_error", code: code)
    }
    /// 404 for a `model` other than the served one (vLLM's answer; OpenAI's is the same status).
    public static func modelNotFound(_ requested: String, served: String) -> APIError {
        notFound("The model '\(quotedPrefix(requested))' does not exist; this server serves '\(served)'.", code: "model_not_found")
    }
    public static func methodNotAllowed(_ message: String) -> APIError {
        APIError(status: 405, message: message, type: "invalid_request_error", code: "method_not_allowed")
    }
    public static let overloaded = APIError(
        status: 429, message: "The server is overloaded: too many requests are waiting. Retry shortly.",
        type: "rate_limit_error", code: "overloaded", retryAfterSeconds: 1)
    public static func unavailable(_ message: String) -> APIError {
        APIError(status: 503, message: message, type: "service_unavailable_error", code: "unavailable", retryAfterSeconds: 1)
    }
    /// Our own fault (a bug or an engine failure), never the client's input.
    public static func internalError(_ message: String) -> APIError {
        APIError(status: 500, message: message, type: "internal_error", code: "internal_error")
    }

    // MARK: Rendering

    public var json: JSONValue {
        .object([
            "error": .object([
                "message": .string(message),
                "type": .string(type),
                "param": .optional(param),
                "code": .optional(code),
            ]),
        ])
    }

    public var response: HTTPResponse {
        var headers: HTTPHeaders = ["Content-Type": "application/json"]
        if let retryAfterSeconds { headers.add(name: "Retry-After", value: String(retryAfterSeconds)) }
        if status == 401 { headers.add(name: "WWW-Authenticate", value: "Bearer") }
        return HTTPResponse(status: status, headers: headers, body: .bytes(json.encoded))
    }
}

extension HTTPResponse {
    /// A JSON response.
    static func json(_ value: JSONValue, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: .bytes(value.encoded))
    }
}

extension InferenceService {
    /// The HTTP server's own error answers (400, 408, 413, 414, 431, 503...) in OpenAI's shape.
    public static func errorResponse(status: Int, message: String) -> HTTPResponse {
        let type = switch status {
        case 503: "service_unavailable_error"
        case 500...: "internal_error"
        default: "invalid_request_error"
        }
        let code: String? = switch status {
        case 413: "payload_too_large"
        case 408: "request_timeout"
        case 503: "unavailable"
        default: nil
        }
        return APIError(status: status, message: message, type: type, code: code, retryAfterSeconds: status == 503 ? 1 : nil).response
    }
}
