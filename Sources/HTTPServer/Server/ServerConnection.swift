import Dispatch

// MARK: - What the server core drives

/// One accepted connection as the server core sees it, whatever protocol it speaks (HTTP/1.1
/// today; HTTP/2 implements the same). The core keeps the limits, the deadline sweep and the
/// drain in one place and reaches every connection only through these calls, each made on the
/// connection's `queue` (implementations check it with `dispatchPrecondition`).
protocol ServerConnection: AnyObject, Sendable {
    var id: Int { get }
    /// The serial queue that confines the connection's state.
    var queue: DispatchQueue { get }
    /// Installs the event sources and starts reading.
    func start()
    /// Applies the timeouts (first byte, head, body, idle, send rate) as of now.
    func checkTimeouts()
    /// Shutdown began: close when idle, finish what runs (HTTP/2: GOAWAY, then let streams end).
    func beginShutdown()
    /// Chosen to make room at a connection limit: close if still idle, else tell the core.
    func evictIfIdle()
    /// Closes at once, cancelling whatever runs for the client.
    func close()
}

extension ServerConnection {
    /// Asserts that the caller runs on the connection's queue.
    func assertOnQueue() {
        dispatchPrecondition(condition: .onQueue(queue))
    }
}

// MARK: - Shared by the HTTP/1.1 and HTTP/2 connections

/// A connection driven by its socket's read and write events that reports its idleness to the core.
protocol SocketDrivenConnection: ServerConnection {
    var core: ServerCore { get }
    /// A read had to wait for the socket to become writable first (TLS: a read that must send, as in a handshake).
    var readWaitsForWritable: Bool { get set }
    /// Nothing is in flight: a candidate for eviction at the connection limit.
    var isIdle: Bool { get }
    var publishedIdle: Bool { get set }
    var idleSince: UInt64 { get set }
    func readable()
    func flush()
}

extension SocketDrivenConnection {
    /// Runs a streamed body's producer in a task (which the connection cancels when the client goes
    /// away); `finished` then runs on `queue` with the producer's error, nil when it completed.
    func startProducer(_ produce: @escaping @Sendable (any HTTPBodyWriter) async throws -> Void, writer: any HTTPBodyWriter,
                       finished: @escaping @Sendable ((any Error)?) -> Void) -> Task<Void, Never> {
        let queue = self.queue
        return Task {
            let failure: (any Error)?
            do {
                try await produce(writer)
                failure = nil
            } catch {
                failure = error
            }
            queue.async { finished(failure) }
        }
    }

    /// The write source fired: go on writing, or retry a read that had to write first.
    func writable() {
        assertOnQueue()
        if readWaitsForWritable {
            readWaitsForWritable = false
            readable()
        }
        flush()
    }

    /// Tells the registry when the connection starts or stops being idle.
    func publishIdleness() {
        let idle = isIdle
        guard idle != publishedIdle else { return }
        publishedIdle = idle
        if idle { idleSince = monotonicNow() }
        core.connectionIdle(id, since: idle ? idleSince : nil)
    }
}
