import Dispatch
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - How the server runs
//
// - The listening socket is watched by a Dispatch read source on `acceptQueue`, which also runs
//   the deadline sweep (a timer at a quarter of the shortest timeout, 10 ms to 1 s).
// - Each accepted socket gets a transport (plain TCP, or TLS) that moves its bytes, and a
//   connection (`ServerConnection`: HTTP/1.1 today) that owns a serial queue (targeting the
//   global concurrent queue) confining all its state, and a read and a write source on the
//   socket. The core reaches connections only through `ServerConnection`, on their queues:
//   limits, the deadline sweep and the drain live here once, whatever the protocol.
// - Bytes read go through the pure parser; complete requests queue up in order (reading pauses
//   while 4 wait). One request at a time runs its handler in a Task, whose response hops back
//   onto the connection's queue to be encoded and sent; a partial send arms the write source.
// - A stream's producer runs in a Task; each write runs on the queue with `sync` (on the producer's
//   own thread when the queue is free: no hand-off per piece), goes out as one chunk at once, and
//   suspends the producer while more than `maxPendingStreamBytes` wait unsent.
// - The registry knows which connections only wait (for a first or next request, or lingering):
//   at a limit (global, or one client address's) the one waiting longest is closed to make room,
//   as nginx reuses keep-alive connections; a newcomer is refused with 503 only when none waits.
// - EOF or a reset cancels what runs for the connection. After a final answer the server shuts
//   its side and discards what the client still sends until it closes (at most 2 s), so that
//   the answer is not destroyed by a reset.

// MARK: - Public server

/// An HTTP/1.1 server on POSIX sockets and Dispatch. Its life: `start()` binds and accepts;
/// `shutdown()` stops accepting, lets in-flight requests finish within the grace period and
/// closes idle connections.
public final class HTTPServer: Sendable {
    private let core: ServerCore

    public init(configuration: HTTPServerConfiguration, logger: Logger, handler: @escaping HTTPHandler) {
        core = ServerCore(configuration: configuration, logger: logger, handler: handler)
    }

    /// Binds and starts accepting; returns the bound port. Throws `HTTPServerError` (a
    /// configuration value out of range, port in use, unknown address...). Starting twice is a
    /// programmer error.
    @discardableResult
    public func start() throws -> Int { try core.start() }

    /// Stops accepting, lets in-flight requests finish within the grace period, closes idle
    /// connections; returns when everything is closed. Safe to call more than once.
    public func shutdown() async { await core.shutdown() }

    /// Re-reads the TLS certificate and key (on SIGHUP): connections accepted from now on use the
    /// new pair, open ones keep theirs. Throws `HTTPServerError.tls` and keeps the old pair when
    /// the new files are unusable; does nothing without TLS.
    public func reloadTLS() throws { try core.reloadTLS() }

    /// Closes every connection now, busy or not, without waiting for the grace period (a second
    /// SIGTERM/SIGINT during the drain). A `shutdown()` under way then returns at once.
    public func closeAllConnections() { core.closeAllConnections() }

    /// Connections currently open (for tests and metrics).
    public var connectionCount: Int { core.connectionCount }
}

// MARK: - Server core

/// The mutable side of `HTTPServer`: life-cycle state, listener, connection registry. `lock`
/// guards `state`, `connections`, the per-client counts and the waiters; the accept source and
/// the sweep timer run on `acceptQueue`.
final class ServerCore: @unchecked Sendable {
    enum State {
        case initial
        case starting
        case running(listener: Int32)
        case shuttingDown
        case shutdown
    }

    let configuration: HTTPServerConfiguration
    let logger: Logger
    let handler: HTTPHandler

    /// A registered connection and what the limits need to know of it.
    private struct Registration {
        let connection: any ServerConnection
        let client: String
        /// Since when it waits for a request (or lingers after its last answer); nil while busy.
        var idleSince: UInt64?
        /// Chosen to make room: no longer counted against the limits.
        var evicting = false
    }

    private let lock = NSLock()
    private var state = State.initial
    private var connections: [Int: Registration] = [:]
    /// Registered connections per client address, those being evicted excluded.
    private var perClient: [String: Int] = [:]
    private var evictingCount = 0
    private var nextConnectionID = 0
    private var listenerFD: Int32?
    private var allClosedWaiters: [CheckedContinuation<Void, Never>] = []
    private var shutdownWaiters: [CheckedContinuation<Void, Never>] = []

    private let acceptQueue = DispatchQueue(label: "http.accept")
    private var acceptSource: DispatchSourceRead?
    /// Accept paused for lack of descriptors (only touched on `acceptQueue`).
    private var acceptPaused = false
    private var sweepTimer: DispatchSourceTimer?
    private let refusal: [UInt8]
    /// Set by `start()` before accepting begins; read on `acceptQueue` only after that.
    private var transports: any TransportFactory = PlainTransportFactory()

    init(configuration: HTTPServerConfiguration, logger: Logger, handler: @escaping HTTPHandler) {
        self.configuration = configuration
        self.logger = logger
        self.handler = handler
        refusal = Self.cannedResponse(configuration.makeErrorResponse(503, "server at its connection limit"))
    }

    var connectionCount: Int { lock.withLock { connections.count } }

    // MARK: Start

    func start() throws -> Int {
        try configuration.validate()
        lock.withLock {
            guard case .initial = state else { preconditionFailure("HTTPServer.start() called twice") }
            state = .starting
        }
        let listener: (fd: Int32, port: Int)
        do {
            if let tls = configuration.tls { transports = try TLSTransportFactory(tls) }
            listener = try makeListeningSocket(host: configuration.host, port: configuration.port, backlog: configuration.backlog)
        } catch {
            lock.withLock { state = .shutdown }
            throw error
        }
        lock.withLock {
            state = .running(listener: listener.fd)
            listenerFD = listener.fd
        }

        let source = DispatchSource.makeReadSource(fileDescriptor: listener.fd, queue: acceptQueue)
        source.setEventHandler { [self] in acceptPending(listener.fd) }
        source.setCancelHandler { closeSocket(listener.fd) }
        acceptSource = source
        source.activate()

        let timer = DispatchSource.makeTimerSource(queue: acceptQueue)
        let interval = DispatchTimeInterval.nanoseconds(Int(configuration.sweepInterval.nanoseconds))
        timer.schedule(deadline: .now() + interval, repeating: interval)
        timer.setEventHandler { [self] in sweep() }
        sweepTimer = timer
        timer.activate()

        logger.info("listening", metadata: [
            "host": "\(configuration.host)", "port": "\(listener.port)", "scheme": "\(configuration.tls == nil ? "http" : "https")",
        ])
        return listener.port
    }

    // MARK: Accepting

    private enum Admission {
        case accepted(any ServerConnection, evicted: [any ServerConnection])
        case overLimit(String)
        case stopping
    }

    private func acceptPending(_ listener: Int32) {
        defer { pauseAcceptingIfOutOfDescriptors() }
        while let (fd, peer) = acceptConnection(listener) {
            let transport = transports.makeTransport(fd: fd)
            switch lock.withLock({ admit(transport, peer) }) {
            case .accepted(let connection, let evicted):
                for victim in evicted { victim.queue.async { victim.evictIfIdle() } }
                connection.start()
            case .overLimit(let limit):
                logger.warning("refusing connection: \(limit)", metadata: ["client": "\(peer)"])
                transport.refuse(with: refusal)
                configuration.onServerAnswer?(ServerAnswer(status: 503))
            case .stopping:
                transport.close(reset: false)  // shutdown has begun: the listener is going away
            }
        }
    }

    /// Registers a new connection, first making room by evicting the connection idle longest, of
    /// the same client when its cap is reached, of anyone at the global limit (as nginx reuses
    /// its keep-alive connections). Under `lock`.
    private func admit(_ transport: any Transport, _ peer: PeerAddress) -> Admission {
        guard case .running = state else { return .stopping }
        var evicted: [any ServerConnection] = []
        let clientCap = configuration.maxConnectionsPerClient
        if clientCap > 0 && perClient[peer.host, default: 0] >= clientCap {
            guard let victim = oldestIdle(client: peer.host) else {
                return .overLimit("client \(peer.host) at its cap of \(clientCap) connections")
            }
            evicted.append(beginEviction(victim))
        }
        if connections.count - evictingCount >= configuration.maxConnections {
            guard let victim = oldestIdle(client: nil) else {
                return .overLimit("at the limit of \(configuration.maxConnections) connections, none idle")
            }
            evicted.append(beginEviction(victim))
        }
        nextConnectionID += 1
        let queue = DispatchQueue(label: "http.connection", target: .global())
        let connection = HTTPConnection(id: nextConnectionID, transport: transport, peer: peer, core: self, queue: queue)
        connections[nextConnectionID] = Registration(connection: connection, client: peer.host, idleSince: monotonicNow())
        perClient[peer.host, default: 0] += 1
        return .accepted(connection, evicted: evicted)
    }

    /// Under `lock`: the registered connection idle longest (of `client`, if given), not already leaving.
    private func oldestIdle(client: String?) -> Int? {
        var best: (id: Int, since: UInt64)?
        for (id, entry) in connections where !entry.evicting {
            guard let since = entry.idleSince, client == nil || entry.client == client else { continue }
            if best == nil || since < best!.since { best = (id, since) }
        }
        return best?.id
    }

    /// Under `lock`: stops counting a connection against the limits; it closes on its own queue.
    private func beginEviction(_ id: Int) -> any ServerConnection {
        connections[id]!.evicting = true
        evictingCount += 1
        perClient[connections[id]!.client]! -= 1
        return connections[id]!.connection
    }

    /// A connection tells when it starts or stops waiting for a request (`since` nil: busy).
    func connectionIdle(_ id: Int, since: UInt64?) {
        lock.withLock { connections[id]?.idleSince = since }
    }

    /// An evicted connection turned busy before it could be closed: it counts again (the limit
    /// is then exceeded by one until a connection closes, rather than a request being dropped).
    func evictionDeclined(_ id: Int) {
        lock.withLock {
            guard let entry = connections[id], entry.evicting else { return }
            connections[id]!.evicting = false
            evictingCount -= 1
            perClient[entry.client, default: 0] += 1
        }
    }

    /// Out of file descriptors, the pending connection stays readable and the source would spin:
    /// pause accepting for a moment instead (connections wait in the backlog meanwhile).
    private func pauseAcceptingIfOutOfDescriptors() {
        let code = errno
        guard code == EMFILE || code == ENFILE, let acceptSource, !acceptPaused else { return }
        logger.error("out of file descriptors: pausing accept for 100 ms", metadata: ["open_connections": "\(connectionCount)"])
        acceptPaused = true
        acceptSource.suspend()
        acceptQueue.asyncAfter(deadline: .now() + .milliseconds(100)) { [self] in resumeAccepting() }
    }

    private func resumeAccepting() {
        guard acceptPaused else { return }
        acceptPaused = false
        acceptSource?.resume()
    }

    /// Checks every connection's deadlines on its own queue.
    private func sweep() {
        for connection in registeredConnections() {
            connection.queue.async { connection.checkTimeouts() }
        }
    }

    private func registeredConnections() -> [any ServerConnection] {
        lock.withLock { connections.values.map(\.connection) }
    }

    /// A connection became another protocol's (HTTP/1.1 to HTTP/2) on the same socket and queue:
    /// the successor takes its registration, and hears of a shutdown already under way.
    func replaceConnection(_ id: Int, with successor: any ServerConnection) {
        let (registered, stopping): (Bool, Bool) = lock.withLock {
            guard connections[id] != nil else { return (false, false) }
            connections[id] = Registration(connection: successor, client: connections[id]!.client,
                                           idleSince: connections[id]!.idleSince, evicting: connections[id]!.evicting)
            if case .shuttingDown = state { return (true, true) }
            return (true, false)
        }
        guard registered else { return successor.queue.async { successor.close() } }
        successor.start()
        if stopping { successor.queue.async { successor.beginShutdown() } }
    }

    func connectionClosed(_ id: Int) {
        let waiters: [CheckedContinuation<Void, Never>] = lock.withLock {
            if let entry = connections.removeValue(forKey: id) {
                if entry.evicting { evictingCount -= 1 } else { perClient[entry.client]! -= 1 }
                if perClient[entry.client] == 0 { perClient[entry.client] = nil }
            }
            guard connections.isEmpty, case .shuttingDown = state else { return [] }
            defer { allClosedWaiters = [] }
            return allClosedWaiters
        }
        waiters.forEach { $0.resume() }
    }

    // MARK: Shutdown

    func shutdown() async {
        enum Step { case done, wait, proceed }
        let step: Step = lock.withLock {
            switch state {
            case .initial, .starting:
                state = .shutdown
                return .done
            case .shutdown:
                return .done
            case .shuttingDown:
                return .wait
            case .running:
                state = .shuttingDown
                return .proceed
            }
        }
        switch step {
        case .done:
            return
        case .wait:
            await withCheckedContinuation { continuation in
                let finished = lock.withLock {
                    if case .shutdown = state { return true }
                    shutdownWaiters.append(continuation)
                    return false
                }
                if finished { continuation.resume() }
            }
            return
        case .proceed:
            break
        }

        logger.info("shutting down", metadata: ["open_connections": "\(connectionCount)"])
        // `shutdown(2)` on the listening socket refuses new connections at once; the descriptor
        // itself is closed by the source's cancel handler, once Dispatch no longer watches it.
        let listener: Int32? = lock.withLock { listenerFD }
        if let listener { shutdownSocket(listener) }
        acceptQueue.sync {
            acceptSource?.cancel()
            resumeAccepting()
        }
        for connection in registeredConnections() {
            connection.queue.async { connection.beginShutdown() }
        }
        let grace = configuration.shutdownGracePeriod
        let forceClose = Task { [self] in
            try? await Task.sleep(for: grace)
            guard !Task.isCancelled else { return }
            let remaining = registeredConnections()
            if !remaining.isEmpty {
                logger.warning("grace period over: closing busy connections", metadata: ["count": "\(remaining.count)"])
            }
            for connection in remaining { connection.queue.async { connection.close() } }
        }
        await withCheckedContinuation { continuation in
            let empty = lock.withLock {
                if connections.isEmpty { return true }
                allClosedWaiters.append(continuation)
                return false
            }
            if empty { continuation.resume() }
        }
        forceClose.cancel()
        acceptQueue.sync { sweepTimer?.cancel() }
        let waiters: [CheckedContinuation<Void, Never>] = lock.withLock {
            state = .shutdown
            defer { shutdownWaiters = [] }
            return shutdownWaiters
        }
        waiters.forEach { $0.resume() }
        logger.info("stopped")
    }

    func reloadTLS() throws {
        guard let tls = acceptQueue.sync(execute: { transports as? TLSTransportFactory }) else { return }
        try tls.reload()
        logger.info("reloaded the TLS certificate and key", metadata: ["certificate": "\(tls.configuration.certificateChainFile)"])
    }

    func closeAllConnections() {
        let remaining = registeredConnections()
        logger.warning("closing every connection now", metadata: ["count": "\(remaining.count)"])
        for connection in remaining { connection.queue.async { connection.close() } }
    }

    // MARK: Helpers

    /// A complete `Connection: close` answer from an error response (only `.bytes` bodies count).
    private static func cannedResponse(_ response: HTTPResponse) -> [UInt8] {
        var body: [UInt8] = []
        if case .bytes(let bytes) = response.body { body = bytes }
        var dates = DateCache()
        var out: [UInt8] = []
        appendResponseHead(
            to: &out, status: response.status, headers: response.headers, framing: .length(body.count),
            connection: "close", requestID: "-", date: dates.current()
        )
        return out + body
    }
}
