import Dispatch
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Connection deadlines, shutdown, request ids, access log

extension HTTPConnection {
    // MARK: Timeouts and shutdown

    /// Closes or answers 408 where a deadline has passed. The clock is read here, on the
    /// connection's queue: a time taken earlier could precede activity recorded meanwhile.
    func checkTimeouts() {
        assertOnQueue()
        let now = monotonicNow()
        func elapsed(since instant: UInt64, atLeast limit: Duration) -> Bool {
            now > instant && now - instant >= UInt64(limit.nanoseconds)
        }
        switch lifecycle {
        case .closed: return
        case .lingering(let deadline, _): if now >= deadline { close() }; return
        case .open: break
        }
        if pendingBytes > 0 {
            guard let windowStart = sendWindowStart, elapsed(since: windowStart, atLeast: configuration.writeTimeout) else { return }
            let delivered = transport.bytesDelivered
            if delivered - deliveredAtWindowStart < max(configuration.minSendBytes, 1) {
                logger.info("closing connection: client reading too slowly", metadata: [
                    "pending_bytes": "\(pendingBytes)", "accepted_bytes": "\(delivered - deliveredAtWindowStart)",
                    "window": "\(configuration.writeTimeout)",
                ])
                close()
            } else {
                (sendWindowStart, deliveredAtWindowStart) = (now, delivered)
            }
            return
        }
        guard current == nil, queued.isEmpty, !stoppedReading else { return }
        switch parser.phase {
        case .idle:
            // A fresh connection gets the first-byte timeout to start talking; a kept-alive one the idle timeout.
            let limit = servedRequests == 0 ? configuration.firstByteTimeout : configuration.idleTimeout
            if elapsed(since: idleSince, atLeast: limit) { close() }
        case .head:
            if elapsed(since: headStartedAt, atLeast: configuration.headTimeout) { timeOut("request head not received in time") }
        case .body:
            if elapsed(since: lastReadAt, atLeast: configuration.bodyTimeout) { timeOut("request body stalled") }
        case .failed:
            break
        }
    }

    func timeOut(_ message: String) {
        stoppedReading = true
        updateReadInterest()
        queued.append(.failure(status: 408, message: message, request: parser.currentRequest))
        startNextIfPossible()
    }

    /// Shutdown began: idle connections close now; a busy one closes after its current response.
    func beginShutdown() {
        assertOnQueue()
        shuttingDown = true
        guard case .open = lifecycle else { return }
        if let flight = current {
            // Not yet answered: the answer will say `Connection: close`.
            if !flight.isStream { current?.keepAlive = false }
        } else if queued.isEmpty && parser.phase == .idle && pendingBytes == 0 {
            close()
        }
    }

    // MARK: Connection limits

    /// Whether the connection only waits: for its first or next request, or for the client to
    /// close after the last answer. Such a connection may be closed to make room for another.
    var isIdle: Bool {
        switch lifecycle {
        case .open:
            current == nil && queued.isEmpty && parser.phase == .idle && pendingBytes == 0 && !closeAfterFlush && !stoppedReading
        case .lingering: true
        case .closed: false
        }
    }

    /// Chosen to make room for a new connection: closes if still idle.
    func evictIfIdle() {
        assertOnQueue()
        guard isIdle else { return core.evictionDeclined(id) }
        logger.debug("closing idle connection to make room for a new one")
        close()
    }

    // MARK: Request ids and access log

    func nextRequestID() -> String { requestIDs.next(connection: id) }

    func logAccess(_ flight: InFlight, status: Int, note: String? = nil) {
        let record = AccessRecord(
            method: flight.method, path: flight.path, protocolVersion: flight.version == .http10 ? "HTTP/1.0" : "HTTP/1.1",
            requestID: flight.requestID, start: flight.start, bodyBytes: flight.bodyBytes
        )
        writeAccessLog(record, status: status, note: note, logger: logger, level: configuration.accessLogLevel)
    }
}
