import Foundation
#if canImport(Glibc)
import Glibc
#endif

// MARK: - A hand-framed HTTP/2 client for what curl cannot do (reset a stream, send GOAWAY)

/// Cleartext HTTP/2 by prior knowledge over a blocking socket. Header blocks are HPACK literals
/// without indexing (no dynamic table), which every HPACK decoder accepts. For tests only: the
/// calls block, so run them off the cooperative pool (`offPool`).
final class H2CFrameClient: @unchecked Sendable {
    struct Frame {
        var type: UInt8
        var flags: UInt8
        var stream: UInt32
        var payload: [UInt8]
        var text: String { String(decoding: payload, as: UTF8.self) }
    }

    static let data: UInt8 = 0, headers: UInt8 = 1, rstStream: UInt8 = 3, settings: UInt8 = 4, goAway: UInt8 = 7
    static let windowUpdate: UInt8 = 8
    static let endStream: UInt8 = 1, endHeaders: UInt8 = 4
    static let cancel: UInt32 = 8

    private let fd: Int32
    private var buffer: [UInt8] = []

    /// Connects and sends the preface with the largest flow-control windows, so that the server
    /// never waits for this client to take its output: only a reset or GOAWAY can stop a stream.
    init(port: Int) throws {
        fd = try LoopbackClient.connectLoopback(port: port, receiveTimeoutSeconds: 10)
        let largestWindow: UInt32 = 0x7FFF_FFFF
        try send(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8))
        try send(Frame(type: Self.settings, flags: 0, stream: 0, payload: [0, 4] + Self.bigEndian(largestWindow)))  // INITIAL_WINDOW_SIZE
        try send(Frame(type: Self.windowUpdate, flags: 0, stream: 0, payload: Self.bigEndian(largestWindow - 65_535)))
    }

    deinit { close(fd) }

    /// A request on `stream`: HEADERS, then the body in one DATA frame that ends the stream.
    func request(stream: UInt32, method: String, path: String, json: String? = nil) throws {
        var fields = [(":method", method), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1")]
        if json != nil { fields.append(("content-type", "application/json")) }
        var block: [UInt8] = []
        for (name, value) in fields {
            block += [0x00] + Self.literalLength(name.utf8.count) + Array(name.utf8) + Self.literalLength(value.utf8.count) + Array(value.utf8)
        }
        let endsHere = json == nil ? Self.endStream : 0
        try send(Frame(type: Self.headers, flags: Self.endHeaders | endsHere, stream: stream, payload: block))
        if let json { try send(Frame(type: Self.data, flags: Self.endStream, stream: stream, payload: Array(json.utf8))) }
    }

    func resetStream(_ stream: UInt32) throws {
        try send(Frame(type: Self.rstStream, flags: 0, stream: stream, payload: Self.bigEndian(Self.cancel)))
    }

    /// GOAWAY(NO_ERROR) naming `lastStream` as the last server-initiated stream processed (none: 0).
    func goAway(lastStream: UInt32 = 0) throws {
        try send(Frame(type: Self.goAway, flags: 0, stream: 0, payload: Self.bigEndian(lastStream) + Self.bigEndian(0)))
    }

    /// Reads frames until one satisfies `match`; nil if the connection ends (or stays silent) first.
    func readFrame(where match: (Frame) -> Bool) -> Frame? {
        while let frame = try? readFrame() {
            if match(frame) { return frame }
        }
        return nil
    }

    func readFrame() throws -> Frame {
        let head = try readExactly(9)
        let length = Int(head[0]) << 16 | Int(head[1]) << 8 | Int(head[2])
        let stream = (UInt32(head[5]) << 24 | UInt32(head[6]) << 16 | UInt32(head[7]) << 8 | UInt32(head[8])) & 0x7FFF_FFFF
        return Frame(type: head[3], flags: head[4], stream: stream, payload: try readExactly(length))
    }

    // MARK: Bytes

    private func send(_ frame: Frame) throws {
        let length = frame.payload.count
        try send([UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), frame.type, frame.flags]
                 + Self.bigEndian(frame.stream & 0x7FFF_FFFF) + frame.payload)
    }

    private func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw LoopbackClient.ClientError.malformed("send failed: errno \(errno)") }
            sent += n
        }
    }

    private func readExactly(_ count: Int) throws -> [UInt8] {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while buffer.count < count {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw LoopbackClient.ClientError.malformed("connection ended") }
            buffer += chunk[0..<n]
        }
        defer { buffer.removeFirst(count) }
        return Array(buffer[0..<count])
    }

    /// An HPACK string length with a 7-bit prefix, Huffman off (RFC 7541 §5.1).
    private static func literalLength(_ length: Int) -> [UInt8] {
        guard length >= 127 else { return [UInt8(length)] }
        var rest = length - 127
        var bytes: [UInt8] = [127]
        while rest >= 128 {
            bytes.append(UInt8(rest & 0x7F | 0x80))
            rest >>= 7
        }
        return bytes + [UInt8(rest)]
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }
}

/// Runs blocking client calls on a global queue, so that the server's tasks keep the cooperative pool.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}
