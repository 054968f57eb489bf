import Dispatch
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Connection

/// One HTTP/1.1 client connection over a transport (plain TCP or TLS): reads and parses
/// requests, runs handlers one at a time (pipelined requests are answered in order), writes
/// responses with back-pressure, enforces the timeouts. Every mutable property is confined to
/// `queue`; tasks hop back onto it to touch them, and the entry points check it.
final class HTTPConnection: SocketDrivenConnection, @unchecked Sendable {
    let id: Int
    let queue: DispatchQueue
    let transport: any Transport
    /// Strong: the registry drops the connection when it closes, which breaks the cycle.
    let core: ServerCore
    let configuration: HTTPServerConfiguration
    let handler: HTTPHandler
    let logger: Logger

    enum Lifecycle {
        case open
        /// Our side is shut down after a final answer; reading and discarding until the client
        /// closes, so that its unread bytes do not turn our close into a reset that destroys the answer.
        case lingering(deadline: UInt64, discarded: Int)
        case closed
    }

    /// A request taken off the wire but not answered yet, or the error to answer instead.
    enum Queued {
        case request(HTTPRequestHead, [UInt8])
        /// `request`: method and target when the request line was read.
        case failure(status: Int, message: String, request: (method: String, target: String)?)
    }

    /// The response being produced.
    struct InFlight {
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

    var lifecycle = Lifecycle.open
    var parser: HTTPRequestParser
    var events: [HTTPParserEvent] = []
    var queued: [Queued] = []
    var current: InFlight?
    /// Parsing stopped (after a timeout answer); the next thing written is the last.
    var stoppedReading = false
    var continuePending = false
    var shuttingDown = false
    var servedRequests = 0

    let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 1024, alignment: 16)
    let socketEvents = SocketEvents()
    var resetOnClose = false
    /// A TLS read that must first write (or a write that must first read) waits for that readiness.
    var readWaitsForWritable = false
    var writeWaitsForReadable = false

    var outbound: [UInt8] = []
    var outboundOffset = 0
    var closeAfterFlush = false
    var drainWaiter: CheckedContinuation<Void, any Error>?
    /// While bytes wait for the client: when the current send-rate window began, and how many
    /// bytes the client had taken then (see `HTTPServerConfiguration.writeTimeout`).
    var sendWindowStart: UInt64?
    var deliveredAtWindowStart = 0
    /// What the registry was last told: waiting for a request (evictable) or busy.
    var publishedIdle = true

    // Deadlines, in `DispatchTime` nanoseconds.
    var idleSince: UInt64
    var headStartedAt: UInt64
    var lastReadAt: UInt64

    var dateCache = DateCache()
    /// The first bytes, kept while they might still be the HTTP/2 preface.
    var prefaceProbe: [UInt8] = []
    var protocolDecided = false
    /// Set when the connection is handed to HTTP/2 with these bytes.
    var http2Input: [UInt8]?
    /// Set when the hand-over answers an `Upgrade: h2c` request: it becomes stream 1.
    var h2cUpgrade: H2CUpgrade?
    var requestIDs = RequestIDGenerator()

    /// Requests parsed ahead of the one being answered before reading pauses.
    static let maxQueuedRequests = 4
    static let lingerTime: UInt64 = 2_000_000_000
    static let maxLingerDiscard = 1 << 20
    static let lingerPollMilliseconds = 20

    init(id: Int, transport: any Transport, peer: PeerAddress, core: ServerCore, queue: DispatchQueue) {
        self.id = id
        self.transport = transport
        self.core = core
        self.queue = queue
        configuration = core.configuration
        handler = core.handler
        var logger = core.logger
        logger[metadataKey: "connection"] = "\(id)"
        logger[metadataKey: "client"] = "\(peer)"
        self.logger = logger
        parser = HTTPRequestParser(limits: configuration.parserLimits)
        let now = monotonicNow()
        (idleSince, headStartedAt, lastReadAt) = (now, now, now)
    }

    deinit { readBuffer.deallocate() }

    var pendingBytes: Int { outbound.count - outboundOffset }

    // MARK: Sources

    func start() {
        queue.async { [self] in
            socketEvents.install(fd: transport.fd, queue: queue, readable: { [self] in readable() },
                           writable: { [self] in writable() }, released: { [self] in socketReleased() })
        }
    }

    func setReading(_ on: Bool) {
        guard socketEvents.setReading(on) else { return }
        readBufferedInputSoon()
    }

    /// Input the transport holds (decrypted TLS records) raises no read event: read it from the queue.
    func readBufferedInputSoon() {
        guard !socketEvents.isReadSuspended, transport.hasBufferedInput else { return }
        queue.async { [self] in
            if case .closed = lifecycle { return }
            guard !socketEvents.isReadSuspended else { return }
            readable()
        }
    }

    func setWriting(_ on: Bool) { socketEvents.setWriting(on) }

    /// Whether reading should run: not while enough requests wait (pipelining is bounded), nor
    /// once the parser has stopped, unless a write waits for it; always while lingering.
    func updateReadInterest() {
        switch lifecycle {
        case .open:
            setReading(writeWaitsForReadable || !stoppedReading && parser.phase != .failed && queued.count < Self.maxQueuedRequests)
        case .lingering: setReading(true)
        case .closed: break
        }
    }

    // MARK: Reading

    func readable() {
        assertOnQueue()
        if writeWaitsForReadable {
            writeWaitsForReadable = false
            flush()
        }
        let count: Int
        switch transport.read(into: readBuffer) {
        case .done(let read): count = read
        case .wouldBlock(let interest):
            readWaitsForWritable = interest == .write
            if readWaitsForWritable { setWriting(true) }
            return
        case .closed, .failed: return peerClosed()
        }
        let now = monotonicNow()
        switch lifecycle {
        case .closed:
            return
        case .lingering(let deadline, let discarded):
            lifecycle = .lingering(deadline: deadline, discarded: discarded + count)
            return pollLingering()
        case .open:
            // After a final error answer nothing more is parsed.
            guard !stoppedReading else { return updateReadInterest() }
        }
        lastReadAt = now
        let wasIdle = parser.phase == .idle
        events.removeAll(keepingCapacity: true)
        let input = UnsafeRawBufferPointer(start: readBuffer.baseAddress, count: count)
        if !protocolDecided && servedRequests == 0 && wasIdle && current == nil && queued.isEmpty {
            switch decideProtocol(input) {
            case .http2(let bytes): return handOverToHTTP2(bytes)
            case .undecided: return
            case .http1(let bytes?): bytes.withUnsafeBytes { parser.feed($0, into: &events) }
            case .http1(nil): parser.feed(input, into: &events)
            }
        } else {
            parser.feed(input, into: &events)
        }
        // The head clock starts with the request's first byte (before it, the first-byte or idle
        // timeout runs).
        if wasIdle && current == nil { headStartedAt = now }
        for event in events {
            switch event {
            case .head(let head):
                continuePending = head.expectsContinue
            case .message(let head, let body):
                continuePending = false
                queued.append(.request(head, body))
            case .error(let error):
                continuePending = false
                queued.append(.failure(status: error.status, message: error.message, request: parser.currentRequest))
            }
        }
        startNextIfPossible()
        // Handed over to HTTP/2 (an upgrade): the successor owns the socket and the registry entry.
        if case .closed = lifecycle { return }
        updateReadInterest()
        publishIdleness()
        readBufferedInputSoon()
    }

    /// EOF or a reset from the client: it has gone, so whatever runs for it is cancelled.
    func peerClosed() {
        close()
    }

    // MARK: Dispatching requests

    func startNextIfPossible() {
        guard case .open = lifecycle, current == nil, !closeAfterFlush, pendingBytes <= configuration.maxPendingStreamBytes
        else { return }
        guard !queued.isEmpty else { return sendContinueIfWaiting() }
        switch queued.removeFirst() {
        case .failure(let status, let message, let request):
            sendErrorResponse(status: status, message: message, request: request)
        case .request(let head, let body):
            if let upgrade = h2cUpgrade(head, body) { return upgradeToHTTP2(upgrade) }
            let requestID = head.headers["X-Request-Id"].flatMap(acceptableRequestID) ?? nextRequestID()
            let request = HTTPRequest(method: head.method, target: head.target, headers: head.headers, body: body, requestID: requestID,
                                      protocolVersion: head.version == .http10 ? "HTTP/1.0" : "HTTP/1.1")
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
    func sendContinueIfWaiting() {
        guard continuePending, current == nil, queued.isEmpty, !closeAfterFlush else { return }
        continuePending = false
        outbound.append(contentsOf: continueResponse)
        flush()
    }

    func responseReady(_ response: HTTPResponse) {
        assertOnQueue()
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
            flight.task = startProducer(produce, writer: writer) { [self] failure in streamFinished(failure) }
            current = flight
            flush()
        }
    }

    func appendHead(_ response: HTTPResponse, _ flight: inout InFlight, framing: ResponseFraming) {
        let connection: String? = !flight.keepAlive ? "close" : (flight.version == .http10 ? "keep-alive" : nil)
        appendResponseHead(
            to: &outbound, status: response.status, headers: response.headers, framing: framing,
            connection: connection, requestID: flight.requestID, date: dateCache.current()
        )
    }

    func finishResponse(_ flight: InFlight) {
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
    func sendErrorResponse(status: Int, message: String, request: (method: String, target: String)?) {
        var response = configuration.makeErrorResponse(status, message)
        if case .stream = response.body { response = .jsonError(status: status, message: message) }
        // RFC 9110 §15.5.16: a 415 for a content coding says which codings are acceptable.
        if status == 415 { response.headers.replaceOrAdd(name: "Accept-Encoding", value: "identity") }
        let path = request.map { String($0.target.prefix { $0 != "?" }) }
        configuration.onServerAnswer?(ServerAnswer(status: response.status, method: request?.method, path: path))
        var flight = InFlight(
            method: request?.method ?? "-", path: path ?? "-",
            version: .http11, requestID: nextRequestID(),
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
}

// MARK: - Helpers

func monotonicNow() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// A client's `X-Request-Id` is echoed only if it is short visible ASCII (it goes into logs and headers).
func acceptableRequestID(_ value: String) -> String? {
    guard (1...128).contains(value.utf8.count), value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
    return value
}

func hex16(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
}
