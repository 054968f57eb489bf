import Foundation
import XCTest

// MARK: - Raw HTTP/2 frames for the tests that curl cannot drive (windows, resets, floods)

/// A frame as read off the wire (RFC 9113 §4.1).
struct TestFrame {
    var type: UInt8
    var flags: UInt8
    var stream: UInt32
    var payload: [UInt8]

    static let data: UInt8 = 0, headers: UInt8 = 1, rstStream: UInt8 = 3, settings: UInt8 = 4, goAway: UInt8 = 7
    static let windowUpdate: UInt8 = 8
    static let endStream: UInt8 = 1, endHeaders: UInt8 = 4, ack: UInt8 = 1

    func encoded() -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, flags,
                UInt8(stream >> 24 & 0x7F), UInt8(stream >> 16 & 0xFF), UInt8(stream >> 8 & 0xFF), UInt8(stream & 0xFF)] + payload
    }

    /// The error code of a GOAWAY or RST_STREAM frame.
    var errorCode: UInt32 {
        let bytes = type == Self.goAway ? payload[4..<8] : payload[0..<4]
        return bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }
}

extension TestClient {
    /// Sends the preface and a SETTINGS frame (`settings`: identifier and value pairs).
    func startHTTP2(settings: [(UInt16, UInt32)] = []) throws {
        var payload: [UInt8] = []
        for (identifier, value) in settings {
            payload += [UInt8(identifier >> 8), UInt8(identifier & 0xFF),
                        UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
        }
        try send(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + TestFrame(type: TestFrame.settings, flags: 0, stream: 0, payload: payload).encoded())
    }

    /// A GET request for `path` with HPACK literals that use no dynamic table (`:method GET`,
    /// `:scheme http` from the static table, `:path` and `:authority` as literals without indexing).
    func requestFrame(stream: UInt32, path: String) -> TestFrame {
        var block: [UInt8] = [0x82, 0x86]  // :method GET, :scheme http
        block += [0x04, UInt8(path.utf8.count)] + Array(path.utf8)  // :path, literal without indexing
        block += [0x01, 9] + Array("localhost".utf8)  // :authority
        return TestFrame(type: TestFrame.headers, flags: TestFrame.endHeaders | TestFrame.endStream, stream: stream, payload: block)
    }

    func send(_ frames: TestFrame...) throws { try send(frames.flatMap { $0.encoded() }) }

    func readFrame(timeout: TimeInterval = 5) throws -> TestFrame {
        let head = try readExactly(9, timeout: timeout)
        let length = Int(head[0]) << 16 | Int(head[1]) << 8 | Int(head[2])
        let stream = (UInt32(head[5]) << 24 | UInt32(head[6]) << 16 | UInt32(head[7]) << 8 | UInt32(head[8])) & 0x7FFF_FFFF
        return TestFrame(type: head[3], flags: head[4], stream: stream, payload: try readExactly(length, timeout: timeout))
    }

    /// Reads frames until one satisfies `match` (others are skipped); nil if the connection ends first.
    func readFrame(timeout: TimeInterval = 5, where match: (TestFrame) -> Bool) throws -> TestFrame? {
        while true {
            guard let frame = try? readFrame(timeout: timeout) else { return nil }
            if match(frame) { return frame }
        }
    }
}

/// `curl` over cleartext HTTP/2 by prior knowledge; extra arguments first.
func curlH2C(_ port: Int, _ path: String, _ extra: [String] = []) throws -> (code: Int32, output: String, errors: String) {
    try runCommand(["curl", "-sS", "--max-time", "10", "--http2-prior-knowledge"] + extra + ["http://127.0.0.1:\(port)\(path)"])
}
