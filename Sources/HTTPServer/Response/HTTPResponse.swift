// MARK: - Response

/// Writes one piece of a streamed response body and flushes it to the client. Suspends while the
/// client is slow (back-pressure); throws once the client has gone.
public protocol HTTPBodyWriter: Sendable {
    func write(_ bytes: [UInt8]) async throws
}

public enum HTTPResponseBody: Sendable {
    case bytes([UInt8])
    /// Sent chunked (or, to an HTTP/1.0 client, delimited by closing the connection). The closure
    /// runs in a task that the server cancels when the client goes away.
    case stream(@Sendable (any HTTPBodyWriter) async throws -> Void)
}

public struct HTTPResponse: Sendable {
    public var status: Int
    /// Application headers. The server owns the framing fields (`Content-Length`,
    /// `Transfer-Encoding`, `Connection`) and replaces any set here.
    public var headers: HTTPHeaders
    public var body: HTTPResponseBody

    public init(status: Int, headers: HTTPHeaders = [:], body: HTTPResponseBody = .bytes([])) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A short JSON error answer: `{"error":"message"}`.
    public static func jsonError(status: Int, message: String) -> HTTPResponse {
        HTTPResponse(
            status: status,
            headers: ["Content-Type": "application/json"],
            body: .bytes(Array("{\"error\":\"\(jsonEscaped(message))\"}".utf8))
        )
    }
}

public typealias HTTPHandler = @Sendable (HTTPRequest) async -> HTTPResponse

// MARK: - JSON string escaping

/// Escapes a string for a JSON string literal (quotes, backslashes, control characters).
func jsonEscaped(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}
