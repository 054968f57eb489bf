#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Response head serialisation

/// How a response body goes on the wire.
enum ResponseFraming {
    /// `Content-Length: n`.
    case length(Int)
    /// `Transfer-Encoding: chunked`.
    case chunked
    /// Neither: the body ends when the connection closes (streams to HTTP/1.0 clients).
    case untilClose
    /// No body and no length (1xx, 204, 304).
    case noBody
}

/// Appends a response head to `out`. Framing and persistence fields are the server's: any the
/// application set are dropped, as are fields that would break the framing (a CR or LF in a
/// value, a name that is not a token).
func appendResponseHead(
    to out: inout [UInt8], status: Int, headers: HTTPHeaders, framing: ResponseFraming,
    connection: String?, requestID: String, date: String
) {
    out.append(contentsOf: "HTTP/1.1 \(status) \(reasonPhrase(status))\r\n".utf8)
    var sawDate = false, sawRequestID = false
    for (name, value) in headers {
        if equalsIgnoringCase(name, "content-length") || equalsIgnoringCase(name, "transfer-encoding")
            || equalsIgnoringCase(name, "connection") { continue }
        guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte),
              value.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F || $0 == .tab }) else { continue }
        sawDate = sawDate || equalsIgnoringCase(name, "date")
        sawRequestID = sawRequestID || equalsIgnoringCase(name, "x-request-id")
        appendField(&out, name, value)
    }
    if !sawDate { appendField(&out, "Date", date) }
    if !sawRequestID { appendField(&out, "X-Request-Id", requestID) }
    switch framing {
    case .length(let length): appendField(&out, "Content-Length", String(length))
    case .chunked: appendField(&out, "Transfer-Encoding", "chunked")
    case .untilClose, .noBody: break
    }
    if let connection { appendField(&out, "Connection", connection) }
    out.append(.cr)
    out.append(.lf)
}

@inline(__always)
private func appendField(_ out: inout [UInt8], _ name: String, _ value: String) {
    out.append(contentsOf: name.utf8)
    out.append(.colon)
    out.append(.space)
    out.append(contentsOf: value.utf8)
    out.append(.cr)
    out.append(.lf)
}

/// Appends one chunk of a chunked body: `size-in-hex CRLF data CRLF`.
func appendChunk(to out: inout [UInt8], _ bytes: [UInt8]) {
    out.append(contentsOf: String(bytes.count, radix: 16).utf8)
    out.append(.cr)
    out.append(.lf)
    out.append(contentsOf: bytes)
    out.append(.cr)
    out.append(.lf)
}

let lastChunk: [UInt8] = Array("0\r\n\r\n".utf8)
let continueResponse: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

/// Statuses that never carry a body (RFC 9110 §6.4.1).
func statusForbidsBody(_ status: Int) -> Bool { (100..<200).contains(status) || status == 204 || status == 304 }

func reasonPhrase(_ status: Int) -> String {
    switch status {
    case 100: "Continue"
    case 200: "OK"
    case 201: "Created"
    case 202: "Accepted"
    case 204: "No Content"
    case 301: "Moved Permanently"
    case 302: "Found"
    case 304: "Not Modified"
    case 400: "Bad Request"
    case 401: "Unauthorized"
    case 403: "Forbidden"
    case 404: "Not Found"
    case 405: "Method Not Allowed"
    case 408: "Request Timeout"
    case 409: "Conflict"
    case 413: "Content Too Large"
    case 414: "URI Too Long"
    case 415: "Unsupported Media Type"
    case 417: "Expectation Failed"
    case 422: "Unprocessable Content"
    case 429: "Too Many Requests"
    case 431: "Request Header Fields Too Large"
    case 500: "Internal Server Error"
    case 501: "Not Implemented"
    case 502: "Bad Gateway"
    case 503: "Service Unavailable"
    case 504: "Gateway Timeout"
    case 505: "HTTP Version Not Supported"
    default: "Status \(status)"
    }
}

// MARK: - Date header

/// The IMF-fixdate of the current second, recomputed only when the second changes (one per
/// connection, so no lock is needed).
struct DateCache {
    private var second = -1
    private var cached = ""

    mutating func current() -> String {
        var now = time(nil)
        if Int(now) == second { return cached }
        second = Int(now)
        var parts = tm()
        gmtime_r(&now, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        cached = "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
        return cached
    }
}
