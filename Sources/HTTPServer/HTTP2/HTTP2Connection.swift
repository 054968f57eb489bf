import CNGHTTP2
import Dispatch
import Logging

// MARK: - Connection

/// One HTTP/2 client connection over a transport (h2c by prior knowledge, or h2 chosen through
/// ALPN): the engine (`HTTP2Session`, nghttp2) turns bytes into requests, each stream's request
/// runs the same handler as over HTTP/1.1, and responses go back as the flow-control windows
/// allow. Every mutable property is confined to `queue`, as in `HTTPConnection`.
final class HTTP2Connection: SocketDrivenConnection, @unchecked Sendable {
    let id: Int
    let queue: DispatchQueue
    let transport: any Transport
    let core: ServerCore
    let configuration: HTTPServerConfiguration
    let handler: HTTPHandler
    let logger: Logger
    let session: HTTP2Session

    /// A request whose handler runs, or whose streamed body is being produced.
    struct Exchange {
        var record: AccessRecord
        var status: Int?
        var task: Task<Void, Never>?
        /// The body writer waits while the stream holds more than `maxPendingStreamBytes`.
        var writerWaiter: CheckedContinuation<Void, any Error>?
    }

    var exchanges: [Int32: Exchange] = [:]
    var isClosed = false
    var shuttingDown = false
    /// Bytes read before the connection became HTTP/2 (the preface), fed to the engine first.
    var handedOverInput: [UInt8]
    /// The HTTP/1.1 request that upgraded the connection, answered on stream 1.
    var upgrade: H2CUpgrade?

    let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 1024, alignment: 16)
    let socketEvents = SocketEvents()
    var readWaitsForWritable = false
    var writeWaitsForReadable = false

    var outbound: [UInt8] = []
    var outboundOffset = 0
    var sendWindowStart: UInt64?
    var deliveredAtWindowStart = 0
    var publishedIdle = false
    var idleSince: UInt64
    var dateCache = DateCache()
    var requestIDs = RequestIDGenerator()

    /// Frames taken from nghttp2 ahead of what the client has read; beyond, nghttp2 keeps them
    /// (and its body reads wait), and reading pauses so that acknowledgements cannot pile up.
    static let outboundLimit = 64 * 1024

    init(id: Int, transport: any Transport, logger: Logger, core: ServerCore, queue: DispatchQueue, input: [UInt8],
         upgrade: H2CUpgrade? = nil) {
        self.id = id
        self.transport = transport
        self.core = core
        self.queue = queue
        self.logger = logger
        configuration = core.configuration
        handler = core.handler
        handedOverInput = input
        self.upgrade = upgrade
        if upgrade != nil { outbound = h2cSwitchingProtocols }
        session = HTTP2Session(limits: HTTP2Limits(core.configuration))
        idleSince = monotonicNow()
        session.onEvent = { [unowned self] event in handle(event) }
    }

    deinit { readBuffer.deallocate() }

    var pendingBytes: Int { outbound.count - outboundOffset }

    // MARK: Sources

    func start() {
        queue.async { [self] in
            socketEvents.install(fd: transport.fd, queue: queue, readable: { [self] in readable() },
                           writable: { [self] in writable() }, released: { [self] in transport.close(reset: false) })
            if let upgrade {
                self.upgrade = nil
                session.acceptUpgrade(settingsPayload: upgrade.settingsPayload, head: upgrade.head, body: upgrade.body)
            }
            let input = handedOverInput
            handedOverInput = []
            _ = input.withUnsafeBytes { session.receive($0) }
            flush()
            readBufferedInputSoon()
        }
    }

    func setReading(_ on: Bool) {
        guard socketEvents.setReading(on) else { return }
        readBufferedInputSoon()
    }

    func setWriting(_ on: Bool) { socketEvents.setWriting(on) }

    /// Decrypted TLS records held in the transport raise no read event: read them from the queue.
    func readBufferedInputSoon() {
        guard !socketEvents.isReadSuspended, transport.hasBufferedInput else { return }
        queue.async { [self] in
            guard !isClosed, !socketEvents.isReadSuspended else { return }
            readable()
        }
    }

    /// Reading pauses while the client leaves our output unread (or a write waits for readability).
    func updateReadInterest() {
        guard !isClosed else { return }
        setReading(writeWaitsForReadable || pendingBytes < Self.outboundLimit)
    }

    // MARK: Reading

    func readable() {
        assertOnQueue()
        if writeWaitsForReadable {
            writeWaitsForReadable = false
            flush()
        }
        guard !isClosed else { return }
        switch transport.read(into: readBuffer) {
        case .done(let count):
            if !session.receive(UnsafeRawBufferPointer(start: readBuffer.baseAddress, count: count)) {
                logger.debug("closing HTTP/2 connection: protocol error from the client")
            }
            flush()
            readBufferedInputSoon()
        case .wouldBlock(let interest):
            readWaitsForWritable = interest == .write
            if readWaitsForWritable { setWriting(true) }
        case .closed, .failed:
            close()
        }
    }

    // MARK: Writing

    /// Takes frames from nghttp2 and writes them until the socket would block; then wakes body
    /// writers whose streams have drained, and closes once the session is over.
    func flush() {
        assertOnQueue()
        guard !isClosed else { return }
        while true {
            if pendingBytes < Self.outboundLimit {
                compactOutbound()
                session.produceOutput(into: &outbound, limit: outboundOffset + Self.outboundLimit)
            }
            guard pendingBytes > 0 else { break }
            switch transport.writeAll(outbound, from: &outboundOffset) {
            case nil:
                continue
            case .wouldBlock(let interest):
                if sendWindowStart == nil { (sendWindowStart, deliveredAtWindowStart) = (monotonicNow(), transport.bytesDelivered) }
                if interest == .read { writeWaitsForReadable = true } else { setWriting(true) }
                resumeDrainedWriters()
                updateReadInterest()
                return
            case .failed:
                return close()
            }
        }
        outbound.removeAll(keepingCapacity: outbound.capacity <= 256 * 1024)
        outboundOffset = 0
        sendWindowStart = nil
        setWriting(false)
        resumeDrainedWriters()
        if session.failed || session.enhanceYourCalm || session.isFinished {
            if session.enhanceYourCalm { logger.warning("closing HTTP/2 connection: flood cap exceeded (GOAWAY ENHANCE_YOUR_CALM)") }
            // Everything is sent (the GOAWAY last): end our side cleanly (close_notify over TLS).
            transport.shutdownOutput()
            return close()
        }
        updateReadInterest()
        publishIdleness()
    }

    func compactOutbound() {
        if outboundOffset > 0 && outboundOffset * 2 >= outbound.count {
            outbound.removeFirst(outboundOffset)
            outboundOffset = 0
        }
    }

    func resumeDrainedWriters() {
        for (stream, exchange) in exchanges {
            guard let waiter = exchange.writerWaiter else { continue }
            if (session.streams[stream]?.queuedBytes ?? 0) <= configuration.maxPendingStreamBytes / 2 {
                exchanges[stream]?.writerWaiter = nil
                waiter.resume()
            }
        }
    }

    // MARK: Closing

    /// Closes at once: cancels every stream's handler, wakes suspended writers with an error.
    func close() {
        assertOnQueue()
        guard !isClosed else { return }
        isClosed = true
        for (_, exchange) in exchanges {
            exchange.task?.cancel()
            exchange.writerWaiter?.resume(throwing: HTTPServerError.clientDisconnected)
            writeAccessLog(exchange.record, status: exchange.status ?? 499, note: "connection closed before the response was complete",
                      logger: logger, level: configuration.accessLogLevel)
        }
        exchanges.removeAll()
        socketEvents.cancel()
        core.connectionClosed(id)
    }
}
