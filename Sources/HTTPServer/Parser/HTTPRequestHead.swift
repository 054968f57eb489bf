// MARK: - Parser output

/// The limits the parser enforces (the server copies them from its configuration).
package struct HTTPParserLimits: Sendable, Equatable {
    package var maxRequestLineBytes = 8 * 1024
    package var maxHeaderBytes = 16 * 1024
    package var maxHeaderCount = 100
    package var maxBodyBytes = 1 << 20
    /// Hex digits of a chunk size, leading zeros included: 16 digits cover any `Int`.
    package var maxChunkSizeDigits = 16
    /// A chunk-size line with its extensions, CRLF excluded.
    package var maxChunkLineBytes = 4 * 1024

    package init() {}
}

package struct HTTPVersion: Sendable, Equatable, CustomStringConvertible {
    package var major: Int
    package var minor: Int
    package static let http10 = HTTPVersion(major: 1, minor: 0)
    package static let http11 = HTTPVersion(major: 1, minor: 1)
    package var description: String { "HTTP/\(major).\(minor)" }
}

/// How the request body is delimited.
package enum HTTPBodyFraming: Sendable, Equatable {
    case none
    case length(Int)
    case chunked
}

/// A parsed and validated request head.
package struct HTTPRequestHead: Sendable, Equatable {
    package var method: String
    /// Origin-form target (`/path?query`), or `*` for `OPTIONS *`.
    package var target: String
    /// The version as understood: `HTTP/1.x` with x ≥ 2 is served as 1.1 (RFC 9110 §6.2).
    package var version: HTTPVersion
    package var headers: HTTPHeaders
    /// Whether the connection may carry another request after this one.
    package var keepAlive: Bool
    /// `Expect: 100-continue` with a body to come: the client waits for an interim answer.
    package var expectsContinue: Bool
    package var framing: HTTPBodyFraming
}

/// What a chunk of input produced, in order.
package enum HTTPParserEvent: Sendable, Equatable {
    /// The head is complete and valid; the body (if any) follows.
    case head(HTTPRequestHead)
    /// The request is complete.
    case message(HTTPRequestHead, body: [UInt8])
    /// The input is invalid; the parser ignores everything after this.
    case error(HTTPParseError)
}

/// Where the parser is within a message; the server picks its timeout from it.
package enum HTTPParserPhase: Sendable, Equatable {
    /// Between messages, no byte of the next one yet.
    case idle
    /// Some bytes of a head, not all.
    case head
    /// Receiving a body.
    case body
    /// Stopped at an error.
    case failed
}
