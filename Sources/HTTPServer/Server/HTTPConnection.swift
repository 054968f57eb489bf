import Dispatch
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Connection

/// One client connection: reads and parses requests, runs handlers one at a time (pipelined
/// requests are answered in order), writes responses with back-pressure, enforces the timeouts.
/// Every mutable property is confined to `queue`; tasks hop back onto it to touch them.
final class HTTPConnection: @unchecked Sendable {
    let id: Int
    let queue: DispatchQueue
    private let fd: Int32
    /// Strong: the registry drops the connection when it closes, which breaks the cycle.
    private let core: ServerCore
    private let configuration: HTTPServerConfiguration
    private let handler: HTTPHandler
    private let logger: Logger

    private enum Lifecycle {
        case open
        /// Our side is shut down after a final answer; reading and discarding until the client
        /// closes, so that its unread bytes do not turn our close into a reset that destroys the answer.
        case lingering(deadline: UInt64, discarded: Int)
        case closed
    }

    /// A request taken off the wire but not answered yet, or the error to answer instead.
    private enum Queued {
        case request(HTTPRequestHead, [UInt8])
        case failure(status: Int, message: String)
    }

    /// The response being produced.
    private struct InFlight {
        var method: String
        var path: String
        var version: HTTPVersion
        var requestID: String
        var start: UInt64
        var keepAlive: Bool
        var status: Int?
        var bodyBytes = 0
        var task: Task<Void, Never>?
        var isStream = false
        var chunked = false
    }

    private var lifecycle = Lifecycle.open
    private var parser: HTTPRequestParser
    private var events: [HTTPParserEvent] = []
    private var queued: [Queued] = []
    private var current: InFlight?
    /// Parsing stopped (after a timeout answer); the next thing written is the last.
    private var stoppedReading = false
    private var continuePending = false
    private var shuttingDown = false
    private var servedRequests = 0

    private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 1024, alignment: 16)
    private var readSource: DispatchSourceRead?
    private var writeSource: DispatchSourceWrite?
    private var readSuspended = false
    private var writeSuspended = false
    private var cancelledSources = 0
    private var resetOnClose = false

    private var outbound: [UInt8] = []
    private var outboundOffset = 0
    private var closeAfterFlush = false
    private var drainWaiter: CheckedContinuation<Void, any Error>?

    // Deadlines, in `DispatchTime` nanoseconds.
    private var idleSince: UInt64
    private var headStartedAt: UInt64
    private var lastReadAt: UInt64
    private var lastWriteProgressAt: UInt64

    private var dateCache = DateCache()
    private let requestIDBase = UInt64.random(in: 0...UInt64.max)
    private var requestCounter: UInt64 = 0

    /// Requests parsed ahead of the one being answered before reading pauses.
    private static let maxQueuedRequests = 4
    private static let lingerTime: UInt64 = 2_000_000_000
    private static let maxLingerDiscard = 1 << 20

    init(id: Int, fd: Int32, core: ServerCore, queue: DispatchQueue) {
        self.id = id
        self.fd = fd
        self.core = core
        self.queue = queue
        configuration = core.configuration
        handler = core.handler
        var logger = core.logger
        logger[metadataKey: "connection"] = "\(id)"
        self.logger = logger
        parser = HTTPRequestParser(limits: configuration.parserLimits)
        let now = monotonicNow()
        (idleSince, headStartedAt, lastReadAt, lastWriteProgressAt) = (now, now, now, now)
    }

    deinit { readBuffer.deallocate() }

    private var pendingBytes: Int { outbound.count - outboundOffset }

    // MARK: Sources

    func start() {
        queue.async { [self] in
            let read = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
            read.setEventHandler { [self] in readable() }
            read.setCancelHandler { [self] in sourceCancelled() }
            let write = DispatchSource.makeWriteSource(fileDescriptor: fd, queue: queue)
            write.setEventHandler { [self] in flush() }
            write.setCancelHandler { [self] in sourceCancelled() }
            readSource = read
            writeSource = write
            read.activate()
            // Activated then suspended at once: we are on `queue`, so no event runs in between.
            write.activate()
            write.suspend()
            writeSuspended = true
        }
    }

    private func setReading(_ on: Bool) {
        guard let readSource, on == readSuspended else { return }
        if on { readSource.resume() } else { readSource.suspend() }
        readSuspended = !on
    }

    private func setWriting(_ on: Bool) {
        guard let writeSource, on == writeSuspended else { return }
        if on { writeSource.resume() } else { writeSource.suspend() }
        writeSuspended = !on
    }

    /// Whether reading should run: not while enough requests wait (pipelining is bounded), nor
    /// once the parser has stopped; always while lingering.
    private func updateReadInterest() {
        switch lifecycle {
        case .open:
            setReading(!stoppedReading && parser.phase != .failed && queued.count < Self.maxQueuedRequests)
        case .lingering: setReading(true)
        case .closed: break
        }
    }

    // MARK: Reading

    private func readable() {
        let count = recv(fd, readBuffer.baseAddress, readBuffer.count, 0)
        if count < 0 {
            let code = errno
            if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return }
            return peerClosed()
        }
        if count == 0 { return peerClosed() }
        let now = monotonicNow()
        switch lifecycle {
        case .closed:
            return
        case .lingering(let deadline, let discarded):
            let total = discarded + count
            if total > Self.maxLingerDiscard { close() } else { lifecycle = .lingering(deadline: deadline, discarded: total) }
            return
        case .open:
            // After a final error answer nothing more is parsed.
            guard !stoppedReading else { return updateReadInterest() }
        }
        lastReadAt = now
        let wasIdle = parser.phase == .idle
        events.removeAll(keepingCapacity: true)
        parser.feed(UnsafeRawBufferPointer(start: readBuffer.baseAddress, count: count), into: &events)
        // The head clock of a keep-alive connection starts with the first byte of the request;
        // on a fresh connection it started at accept.
        if wasIdle && servedRequests > 0 && current == nil { headStartedAt = now }
        for event in events {
            switch event {
            case .head(let head):
                continuePending = head.expectsContinue
            case .message(let head, let body):
                continuePending = false
                queued.append(.request(head, body))
            case .error(let error):
                continuePending = false
                queued.append(.failure(status: error.status, message: error.message))
            }
        }
        startNextIfPossible()
        updateReadInterest()
    }

    /// EOF or a reset from the client: it has gone, so whatever runs for it is cancelled.
    private func peerClosed() {
        close()
    }

    // MARK: Dispatching requests

    private func startNextIfPossible() {
        guard case .open = lifecycle, current == nil, !closeAfterFlush, pendingBytes <= configuration.maxPendingStreamBytes
        else { return }
        guard !queued.isEmpty else { return sendContinueIfWaiting() }
        switch queued.removeFirst() {
        case .failure(let status, let message):
            sendErrorResponse(status: status, message: message)
        case .request(let head, let body):
            let requestID = head.headers["X-Request-Id"].flatMap(acceptableRequestID) ?? nextRequestID()
            let request = HTTPRequest(method: head.method, target: head.target, headers: head.headers, body: body, requestID: requestID)
            var flight = InFlight(
                method: head.method, path: request.path, version: head.version, requestID: requestID,
                start: monotonicNow(), keepAlive: head.keepAlive && !shuttingDown
            )
            let handler = self.handler
            flight.task = Task { [self] in
                let response = await handler(request)
                queue.async { [self] in responseReady(response) }
            }
            current = flight
        }
        updateReadInterest()
    }

    /// Answers `Expect: 100-continue` once nothing is ahead of it: an interim answer must not
    /// land in the middle of an earlier response.
    private func sendContinueIfWaiting() {
        guard continuePending, current == nil, queued.isEmpty, !closeAfterFlush else { return }
        continuePending = false
        outbound.append(contentsOf: continueResponse)
        flush()
    }

    private func responseReady(_ response: HTTPResponse) {
        guard case .open = lifecycle, var flight = current else { return }
        flight.task = nil
        flight.status = response.status
        flight.keepAlive = flight.keepAlive && !shuttingDown
        let bodyless = flight.method == "HEAD" || statusForbidsBody(response.status)
        let noLength = statusForbidsBody(response.status)
        switch response.body {
        case .bytes(let bytes):
            appendHead(response, &flight, framing: noLength ? .noBody : .length(bytes.count))
            if !bodyless {
                outbound.append(contentsOf: bytes)
                flight.bodyBytes = bytes.count
            }
            finishResponse(flight)
        case .stream where bodyless:
            appendHead(response, &flight, framing: noLength ? .noBody : .chunked)
            finishResponse(flight)
        case .stream(let produce):
            // HTTP/1.0 has no chunked coding: the body ends with the connection.
            flight.chunked = flight.version == .http11
            flight.keepAlive = flight.keepAlive && flight.chunked
            flight.isStream = true
            appendHead(response, &flight, framing: flight.chunked ? .chunked : .untilClose)
            let writer = ConnectionBodyWriter(connection: self)
            flight.task = Task { [self] in
                let failure: (any Error)?
                do {
                    try await produce(writer)
                    failure = nil
                } catch {
                    failure = error
                }
                queue.async { [self] in streamFinished(failure) }
            }
            current = flight
            flush()
        }
    }

    private func appendHead(_ response: HTTPResponse, _ flight: inout InFlight, framing: ResponseFraming) {
        let connection: String? = !flight.keepAlive ? "close" : (flight.version == .http10 ? "keep-alive" : nil)
        appendResponseHead(
            to: &outbound, status: response.status, headers: response.headers, framing: framing,
            connection: connection, requestID: flight.requestID, date: dateCache.current()
        )
    }

    private func finishResponse(_ flight: InFlight) {
        logAccess(flight, status: flight.status ?? 500)
        current = nil
        servedRequests += 1
        if !flight.keepAlive || shuttingDown { closeAfterFlush = true }
        // A pipelined request that was arriving meanwhile gets a fresh head/body window.
        let now = monotonicNow()
        (idleSince, headStartedAt, lastReadAt) = (now, now, now)
        flush()
        startNextIfPossible()
        updateReadInterest()
    }

    /// Answers on the server's behalf (parse error, timeout) and closes after it.
    private func sendErrorResponse(status: Int, message: String) {
        var response = configuration.makeErrorResponse(status, message)
        if case .stream = response.body { response = .jsonError(status: status, message: message) }
        var flight = InFlight(
            method: "-", path: "-", version: .http11, requestID: nextRequestID(),
            start: monotonicNow(), keepAlive: false, status: response.status
        )
        guard case .bytes(let body) = response.body else { return }
        appendHead(response, &flight, framing: .length(body.count))
        outbound.append(contentsOf: body)
        flight.bodyBytes = body.count
        logAccess(flight, status: response.status)
        closeAfterFlush = true
        stoppedReading = true
        updateReadInterest()
        flush()
    }

    // MARK: Streams

    /// Called by the body writer (through `queue`): frames and flushes one piece, and suspends the
    /// writer while more than `maxPendingStreamBytes` wait unsent.
    fileprivate func streamWrite(_ bytes: [UInt8], _ continuation: CheckedContinuation<Void, any Error>) {
        guard case .open = lifecycle, var flight = current, flight.isStream else {
            return continuation.resume(throwing: HTTPServerError.clientDisconnected)
        }
        if flight.chunked { appendChunk(to: &outbound, bytes) } else { outbound.append(contentsOf: bytes) }
        flight.bodyBytes += bytes.count
        current = flight
        flush()
        guard case .open = lifecycle else { return continuation.resume(throwing: HTTPServerError.clientDisconnected) }
        if pendingBytes > configuration.maxPendingStreamBytes {
            drainWaiter = continuation
        } else {
            continuation.resume()
        }
    }

    private func streamFinished(_ failure: (any Error)?) {
        guard case .open = lifecycle, let flight = current, flight.isStream else { return }
        if let failure {
            // The status is long sent: the only honest signal left is an abrupt close, so the
            // client cannot take a truncated body for a complete one.
            logger.warning("stream failed", metadata: ["request_id": "\(flight.requestID)", "error": "\(failure)"])
            logAccess(flight, status: flight.status ?? 500)
            current = nil
            resetOnClose = true
            return close()
        }
        if flight.chunked { outbound.append(contentsOf: lastChunk) }
        finishResponse(flight)
    }

    // MARK: Writing

    private func flush() {
        guard case .open = lifecycle else { return }
        while outboundOffset < outbound.count {
            let written = outbound.withUnsafeBytes { bytes in
                sendBytes(fd, bytes.baseAddress! + outboundOffset, bytes.count - outboundOffset)
            }
            if written > 0 {
                outboundOffset += written
                lastWriteProgressAt = monotonicNow()
                continue
            }
            let code = errno
            if written < 0 && code == EINTR { continue }
            if written < 0 && (code == EAGAIN || code == EWOULDBLOCK) {
                compactOutbound()
                setWriting(true)
                if pendingBytes <= configuration.maxPendingStreamBytes / 2 { resumeDrainWaiter() }
                return
            }
            return peerClosed()
        }
        outbound.removeAll(keepingCapacity: outbound.capacity <= 256 * 1024)
        outboundOffset = 0
        setWriting(false)
        resumeDrainWaiter()
        if closeAfterFlush { beginLingeringClose() } else { startNextIfPossible() }
    }

    private func compactOutbound() {
        if outboundOffset >= 64 * 1024 && outboundOffset * 2 >= outbound.count {
            outbound.removeFirst(outboundOffset)
            outboundOffset = 0
        }
    }

    private func resumeDrainWaiter() {
        drainWaiter?.resume()
        drainWaiter = nil
    }

    // MARK: Closing

    private func beginLingeringClose() {
        guard case .open = lifecycle else { return }
        // Nothing unread and no request under way: a plain close cannot turn into a reset.
        if parser.phase == .idle && queued.isEmpty && bytesWaitingToBeRead(fd) == 0 { return close() }
        shutdown(fd, Int32(SHUT_WR))
        lifecycle = .lingering(deadline: monotonicNow() + Self.lingerTime, discarded: 0)
        setWriting(false)
        updateReadInterest()
    }

    /// Closes at once: cancels what runs for the client, wakes a suspended writer with an error.
    func close() {
        if case .closed = lifecycle { return }
        lifecycle = .closed
        if let flight = current {
            flight.task?.cancel()
            logAccess(flight, status: flight.status ?? 499, note: "client gone")
            current = nil
        }
        drainWaiter?.resume(throwing: HTTPServerError.clientDisconnected)
        drainWaiter = nil
        queued.removeAll()
        if resetOnClose {
            var noLinger = linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &noLinger, socklen_t(MemoryLayout<linger>.size))
        }
        // Cancel first, then resume: a suspended source only delivers its cancel handler once resumed.
        readSource?.cancel()
        writeSource?.cancel()
        setReading(true)
        setWriting(true)
        core.connectionClosed(id)
    }

    private func sourceCancelled() {
        cancelledSources += 1
        guard cancelledSources == 2 else { return }
        closeSocket(fd)
        // The sources' handlers hold the connection: dropping the sources breaks that cycle.
        readSource = nil
        writeSource = nil
    }

    // MARK: Timeouts and shutdown

    func checkTimeouts(now: UInt64) {
        switch lifecycle {
        case .closed: return
        case .lingering(let deadline, _): if now >= deadline { close() }; return
        case .open: break
        }
        if pendingBytes > 0 {
            if now &- lastWriteProgressAt >= UInt64(configuration.writeTimeout.nanoseconds) {
                logger.info("closing connection: client not reading", metadata: ["pending_bytes": "\(pendingBytes)"])
                close()
            }
            return
        }
        guard current == nil, queued.isEmpty, !stoppedReading else { return }
        switch parser.phase {
        case .idle:
            // A fresh connection gets the head timeout to start talking; a kept-alive one the idle timeout.
            let limit = servedRequests == 0 ? configuration.headTimeout : configuration.idleTimeout
            if now &- idleSince >= UInt64(limit.nanoseconds) { close() }
        case .head:
            if now &- headStartedAt >= UInt64(configuration.headTimeout.nanoseconds) { timeOut("request head not received in time") }
        case .body:
            if now &- lastReadAt >= UInt64(configuration.bodyTimeout.nanoseconds) { timeOut("request body stalled") }
        case .failed:
            break
        }
    }

    private func timeOut(_ message: String) {
        stoppedReading = true
        updateReadInterest()
        queued.append(.failure(status: 408, message: message))
        startNextIfPossible()
    }

    /// Shutdown began: idle connections close now; a busy one closes after its current response.
    func beginShutdown() {
        shuttingDown = true
        guard case .open = lifecycle else { return }
        if let flight = current {
            // Not yet answered: the answer will say `Connection: close`.
            if !flight.isStream { current?.keepAlive = false }
        } else if queued.isEmpty && parser.phase == .idle && pendingBytes == 0 {
            close()
        }
    }

    // MARK: Request ids and access log

    private func nextRequestID() -> String {
        requestCounter += 1
        return hex16(requestIDBase) + hex16(requestCounter &+ UInt64(id) << 40)
    }

    private func logAccess(_ flight: InFlight, status: Int, note: String? = nil) {
        let level = configuration.accessLogLevel
        guard logger.logLevel <= level else { return }
        let milliseconds = Double(monotonicNow() &- flight.start) / 1e6
        var metadata: Logger.Metadata = [
            "method": "\(flight.method)", "path": "\(flight.path)", "status": "\(status)",
            "bytes": "\(flight.bodyBytes)", "duration_ms": "\(Double(Int(milliseconds * 1000)) / 1000)",
            "request_id": "\(flight.requestID)",
        ]
        if let note { metadata["note"] = "\(note)" }
        logger.log(level: level, "\(flight.method) \(flight.path) \(status)", metadata: metadata)
    }
}

// MARK: - Body writer

/// The `HTTPBodyWriter` handed to a stream: each write is framed and flushed at once.
struct ConnectionBodyWriter: HTTPBodyWriter {
    let connection: HTTPConnection

    func write(_ bytes: [UInt8]) async throws {
        try Task.checkCancellation()
        // An empty chunk would end a chunked body: nothing to send.
        guard !bytes.isEmpty else { return }
        try await withCheckedThrowingContinuation { continuation in
            connection.queue.async { connection.streamWrite(bytes, continuation) }
        }
    }
}

// MARK: - Helpers

func monotonicNow() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// A client's `X-Request-Id` is echoed only if it is short visible ASCII (it goes into logs and headers).
func acceptableRequestID(_ value: String) -> String? {
    guard (1...128).contains(value.utf8.count), value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
    return value
}

private func hex16(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
}
