import CNGHTTP2
import Dispatch
import Logging

// MARK: - Deadlines, shutdown, eviction

extension HTTP2Connection {
    /// The HTTP/1.1 deadlines in their HTTP/2 form: a header block that stalls (head timeout,
    /// for the whole connection: nothing else may interleave with it), a request body that
    /// stalls (408 on that stream), a stream whose queued body the client does not take (reset),
    /// output the client does not read (close), and an idle connection (GOAWAY, close).
    func checkTimeouts() {
        assertOnQueue()
        guard !isClosed else { return }
        let now = monotonicNow()
        func elapsed(since instant: UInt64, atLeast limit: Duration) -> Bool {
            now > instant && now - instant >= UInt64(limit.nanoseconds)
        }
        if pendingBytes > 0, let windowStart = sendWindowStart, elapsed(since: windowStart, atLeast: configuration.writeTimeout) {
            let delivered = transport.bytesDelivered
            if delivered - deliveredAtWindowStart < max(configuration.minSendBytes, 1) {
                logger.info("closing HTTP/2 connection: client reading too slowly", metadata: ["pending_bytes": "\(pendingBytes)"])
                return close()
            }
            (sendWindowStart, deliveredAtWindowStart) = (now, delivered)
        }
        if let started = session.headerBlockStartedAt, elapsed(since: started, atLeast: configuration.headTimeout) {
            logger.info("closing HTTP/2 connection: header block not completed in time")
            return close()
        }
        for stream in session.streams.values {
            if stream.isReceivingBody && elapsed(since: stream.lastReceivedAt, atLeast: configuration.bodyTimeout) {
                session.refuse(stream, status: 408, message: "request body stalled")
            } else if stream.queuedBytes > 0 && elapsed(since: stream.lastSentAt, atLeast: configuration.writeTimeout) {
                logger.info("resetting HTTP/2 stream: client took none of its body in time", metadata: ["stream": "\(stream.id)"])
                session.reset(stream: stream.id, code: NGHTTP2_CANCEL)
            }
        }
        if isIdle && elapsed(since: idleSince, atLeast: configuration.idleTimeout) {
            session.goAway()
            flush()
            return close()
        }
        flush()
    }

    /// Shutdown began: GOAWAY names the last stream taken; streams up to it finish (within the
    /// server's grace period), and the connection closes when the last one has.
    func beginShutdown() {
        assertOnQueue()
        shuttingDown = true
        guard !isClosed else { return }
        session.goAway()
        flush()
    }

    /// No stream open and nothing to send: the connection only waits for a request.
    var isIdle: Bool {
        !isClosed && exchanges.isEmpty && session.streams.isEmpty && pendingBytes == 0
    }

    func evictIfIdle() {
        assertOnQueue()
        guard isIdle else { return core.evictionDeclined(id) }
        logger.debug("closing idle HTTP/2 connection to make room for a new one")
        session.goAway()
        flush()
        close()
    }
}
