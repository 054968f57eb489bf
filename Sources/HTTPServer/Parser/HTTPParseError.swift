// MARK: - Parse errors

/// Why a request was refused before reaching a handler. Every parse error is terminal: once the
/// framing is in doubt nothing after it can be trusted, so the server answers and closes the
/// connection (nothing can be smuggled behind a bad request).
package enum HTTPParseError: Error, Equatable, Sendable {
    // 414
    case requestLineTooLong
    // 431
    case headerBlockTooLarge
    case tooManyHeaders
    // 413
    case bodyTooLarge
    // 505
    case unsupportedVersion
    // 415: a request body in a content coding the server does not decode
    case unsupportedContentEncoding
    // 417: an expectation other than 100-continue
    case unsupportedExpectation
    // 400: request line
    case malformedRequestLine
    case invalidMethod
    case invalidTarget
    // 400: line framing
    case bareLF
    case bareCR
    // 400: header fields
    case obsFold
    case whitespaceBeforeColon
    case invalidHeaderName
    case invalidHeaderValue
    case missingHost
    case duplicateHost
    case invalidHost
    // 400: body framing
    case contentLengthWithTransferEncoding
    case invalidContentLength
    case conflictingContentLength
    case unsupportedTransferEncoding
    case transferEncodingInHTTP10
    case invalidChunkSize
    case invalidChunkExtension
    case chunkLineTooLong
    case missingChunkCRLF

    /// The status code of the answer.
    package var status: Int {
        switch self {
        case .requestLineTooLong: 414
        case .headerBlockTooLarge, .tooManyHeaders: 431
        case .bodyTooLarge: 413
        case .unsupportedVersion: 505
        case .unsupportedContentEncoding: 415
        case .unsupportedExpectation: 417
        default: 400
        }
    }

    /// A short, client-facing explanation (goes into the JSON error body).
    package var message: String {
        switch self {
        case .requestLineTooLong: "request line too long"
        case .headerBlockTooLarge: "header block too large"
        case .tooManyHeaders: "too many header fields"
        case .bodyTooLarge: "request body too large"
        case .unsupportedVersion: "HTTP version not supported"
        case .unsupportedContentEncoding: "unsupported Content-Encoding: request bodies must not be compressed"
        case .unsupportedExpectation: "unsupported expectation: only Expect: 100-continue is understood"
        case .malformedRequestLine: "malformed request line"
        case .invalidMethod: "invalid method"
        case .invalidTarget: "invalid request target"
        case .bareLF: "line not terminated by CRLF"
        case .bareCR: "bare CR"
        case .obsFold: "obsolete line folding"
        case .whitespaceBeforeColon: "whitespace before colon in header field"
        case .invalidHeaderName: "invalid header field name"
        case .invalidHeaderValue: "invalid character in header field value"
        case .missingHost: "missing Host header"
        case .duplicateHost: "duplicated Host header"
        case .invalidHost: "Host is not a valid host[:port]"
        case .contentLengthWithTransferEncoding: "both Content-Length and Transfer-Encoding"
        case .invalidContentLength: "invalid Content-Length"
        case .conflictingContentLength: "conflicting Content-Length values"
        case .unsupportedTransferEncoding: "unsupported Transfer-Encoding"
        case .transferEncodingInHTTP10: "Transfer-Encoding in an HTTP/1.0 request"
        case .invalidChunkSize: "invalid chunk size"
        case .invalidChunkExtension: "invalid chunk extension"
        case .chunkLineTooLong: "chunk size line too long"
        case .missingChunkCRLF: "chunk data not followed by CRLF"
        }
    }
}
