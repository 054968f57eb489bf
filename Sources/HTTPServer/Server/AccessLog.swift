import Logging

// MARK: - Access log and request ids, shared by the HTTP/1.1 and HTTP/2 connections

/// One access-log line: what was asked, what was answered, how long it took.
struct AccessRecord {
    var method: String
    var path: String
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2`.
    var protocolVersion: String
    var requestID: String
    var start: UInt64
    var bodyBytes = 0
}

func writeAccessLog(_ record: AccessRecord, status: Int, note: String? = nil, logger: Logger, level: Logger.Level) {
    guard logger.logLevel <= level else { return }
    let milliseconds = Double(monotonicNow() &- record.start) / 1e6
    var metadata: Logger.Metadata = [
        "method": "\(record.method)", "path": "\(record.path)", "status": "\(status)",
        "bytes": "\(record.bodyBytes)", "duration_ms": "\(Double(Int(milliseconds * 1000)) / 1000)",
        "request_id": "\(record.requestID)", "protocol": "\(record.protocolVersion)",
    ]
    if let note { metadata["note"] = "\(note)" }
    logger.log(level: level, "\(record.method) \(record.path) \(status)", metadata: metadata)
}

/// Request ids of one connection: a random per-connection base and a counter (with the
/// connection id mixed in), unique without coordination between connections.
struct RequestIDGenerator {
    private let base = UInt64.random(in: 0...UInt64.max)
    private var counter: UInt64 = 0

    mutating func next(connection id: Int) -> String {
        counter += 1
        return hex16(base) + hex16(counter &+ UInt64(id) << 40)
    }
}
