import Dispatch
import Foundation
import HTTPServer
import Logging
import XCTest
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Running a server in a test

/// Short timeouts so that timeout tests stay fast; each test overrides what it exercises.
func testConfiguration() -> HTTPServerConfiguration {
    var configuration = HTTPServerConfiguration()
    configuration.port = 0
    configuration.headTimeout = .seconds(5)
    configuration.idleTimeout = .seconds(5)
    configuration.bodyTimeout = .seconds(5)
    configuration.writeTimeout = .seconds(5)
    configuration.shutdownGracePeriod = .seconds(5)
    return configuration
}

func quietLogger() -> Logger {
    var logger = Logger(label: "http-test")
    logger.logLevel = .error
    return logger
}

/// Runs `body` against a started server and shuts it down afterwards. Test methods are
/// synchronous (run on the main thread) so that blocking socket calls never occupy the
/// cooperative pool the server's handlers need.
func withServer(
    _ configuration: HTTPServerConfiguration = testConfiguration(), logger: Logger = quietLogger(),
    handler: @escaping HTTPHandler, _ body: (HTTPServer, Int) throws -> Void
) throws {
    let server = HTTPServer(configuration: configuration, logger: logger, handler: handler)
    let port = try server.start()
    defer { blocking { await server.shutdown() } }
    try body(server, port)
}

/// Waits on the calling thread for an async operation.
@discardableResult
func blocking<T: Sendable>(_ operation: @escaping @Sendable () async -> T) -> T {
    let box = Box<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        box.value = await operation()
        done.signal()
    }
    done.wait()
    return box.value!
}

final class Box<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T?
    var value: T? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

/// A thread-safe flag/counter the handlers set and the test polls.
final class Probe: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [String] = []
    func record(_ event: String) { lock.withLock { events.append(event) } }
    var recorded: [String] { lock.withLock { events } }

    /// Polls until `condition` holds or `timeout` passes.
    func wait(timeout: TimeInterval = 3, until condition: ([String]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition(recorded) { return true }
            usleep(5_000)
        }
        return condition(recorded)
    }
}

/// A one-shot gate a streaming handler waits on and the test opens.
final class Gate: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    func open() { semaphore.signal() }
    func wait() async {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                self.semaphore.wait()
                continuation.resume()
            }
        }
    }
}

func text(_ status: Int = 200, _ body: String, headers: HTTPHeaders = ["Content-Type": "text/plain"]) -> HTTPResponse {
    HTTPResponse(status: status, headers: headers, body: .bytes(Array(body.utf8)))
}

// MARK: - A blocking raw-socket client

struct TestResponse {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]
    var bodyText: String { String(decoding: body, as: UTF8.self) }
}

enum TestClientError: Error { case timeout, closed, malformed(String), connect(Int32) }

/// A deliberately simple HTTP/1.1 client over a blocking socket, for driving the server exactly
/// byte by byte (split writes, pipelining, slow sending, half-read streams).
final class TestClient {
    let fd: Int32
    private var buffer: [UInt8] = []
    /// Set by `startTLS`: reads and writes then go through it.
    var tls: TLSClientSession?

    /// `sourceAddress`: an IPv4 address to connect from (another loopback address is another client).
    init(port: Int, host: String = "127.0.0.1", receiveBufferBytes: Int32? = nil, sourceAddress: String? = nil) throws {
        let isV6 = host.contains(":")
        fd = socket(isV6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if let sourceAddress {
            var source = sockaddr_in()
            source.sin_family = sa_family_t(AF_INET)
            inet_pton(AF_INET, sourceAddress, &source.sin_addr)
            _ = withUnsafePointer(to: &source) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        if let size = receiveBufferBytes {
            var value = size
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &value, socklen_t(MemoryLayout<Int32>.size))
        }
        let result: Int32
        if isV6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = UInt16(port).bigEndian
            inet_pton(AF_INET6, host, &address.sin6_addr)
            result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            inet_pton(AF_INET, host, &address.sin_addr)
            result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        if result != 0 {
            let code = errno
            closeDescriptor(fd)
            throw TestClientError.connect(code)
        }
    }

    private var isOpen = true

    deinit { close() }

    /// Closes normally (FIN).
    func close() {
        guard isOpen else { return }
        isOpen = false
        closeDescriptor(fd)
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { tls?.write($0) ?? rawSend(fd, $0) }
            if sent <= 0 { throw TestClientError.closed }
            offset += sent
        }
    }

    /// Closes with a reset rather than a FIN (SO_LINGER 0).
    func reset() {
        var noLinger = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &noLinger, socklen_t(MemoryLayout<linger>.size))
        close()
    }

    /// Reads more bytes into the buffer; false on EOF (or reset).
    private func fill(timeout: TimeInterval) throws -> Bool {
        if tls?.hasBufferedInput != true {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(timeout * 1000))
            if ready == 0 { throw TestClientError.timeout }
        }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { tls?.read($0) ?? recv(fd, $0.baseAddress, $0.count, 0) }
        if count <= 0 { return false }
        buffer += chunk[0..<count]
        return true
    }

    private func readLine(timeout: TimeInterval) throws -> String {
        while true {
            if let lf = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[..<lf]
                buffer.removeFirst(lf + 1)
                guard line.last == UInt8(ascii: "\r") else { throw TestClientError.malformed("bare LF from server") }
                return String(decoding: line.dropLast(), as: UTF8.self)
            }
            guard try fill(timeout: timeout) else { throw TestClientError.closed }
        }
    }

    func readExactly(_ count: Int, timeout: TimeInterval) throws -> [UInt8] {
        while buffer.count < count {
            guard try fill(timeout: timeout) else { throw TestClientError.closed }
        }
        defer { buffer.removeFirst(count) }
        return Array(buffer[..<count])
    }

    /// Reads a status line and header fields.
    func readHead(timeout: TimeInterval = 5) throws -> (status: Int, headers: HTTPHeaders) {
        let statusLine = try readLine(timeout: timeout)
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0] == "HTTP/1.1", let status = Int(parts[1]) else {
            throw TestClientError.malformed("status line \(statusLine.debugDescription)")
        }
        var headers = HTTPHeaders()
        while true {
            let line = try readLine(timeout: timeout)
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { throw TestClientError.malformed(line) }
            headers.add(name: String(line[..<colon]), value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return (status, headers)
    }

    /// Reads a whole response; `bodyless` for answers to HEAD.
    func readResponse(timeout: TimeInterval = 5, bodyless: Bool = false) throws -> TestResponse {
        let (status, headers) = try readHead(timeout: timeout)
        if bodyless || status < 200 || status == 204 || status == 304 {
            return TestResponse(status: status, headers: headers, body: [])
        }
        if headers["Transfer-Encoding"] == "chunked" {
            var body: [UInt8] = []
            while let chunk = try readChunk(timeout: timeout) { body += chunk }
            return TestResponse(status: status, headers: headers, body: body)
        }
        if let length = headers["Content-Length"].flatMap(Int.init) {
            return TestResponse(status: status, headers: headers, body: try readExactly(length, timeout: timeout))
        }
        while try fill(timeout: timeout) {}
        defer { buffer = [] }
        return TestResponse(status: status, headers: headers, body: buffer)
    }

    /// The next chunk of a chunked body; nil after the last chunk (and its empty trailer).
    func readChunk(timeout: TimeInterval = 5) throws -> [UInt8]? {
        let sizeLine = try readLine(timeout: timeout)
        guard let size = Int(sizeLine, radix: 16) else { throw TestClientError.malformed("chunk size \(sizeLine)") }
        if size == 0 {
            _ = try readLine(timeout: timeout)
            return nil
        }
        let data = try readExactly(size, timeout: timeout)
        guard try readLine(timeout: timeout).isEmpty else { throw TestClientError.malformed("chunk end") }
        return data
    }

    /// Reads and discards what has arrived, at most `limit` bytes, without waiting; returns the count.
    func readAvailable(upTo limit: Int) -> Int {
        var chunk = [UInt8](repeating: 0, count: limit)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        return max(count, 0)
    }

    /// Whether the server closes the connection (EOF) within `timeout`, with nothing unread.
    func waitForClose(timeout: TimeInterval = 3) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            do { if try !fill(timeout: 0.05) { return true } } catch TestClientError.timeout { continue } catch { return true }
        }
        return false
    }
}

// MARK: - libc calls that TestClient's own method names would shadow

private func closeDescriptor(_ fd: Int32) {
    close(fd)
}

private func rawSend(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int {
    #if canImport(Glibc)
    return send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
    #else
    return send(fd, bytes.baseAddress, bytes.count, 0)
    #endif
}
