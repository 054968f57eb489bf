import Dispatch
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Connection output: streams, writing, closing

extension HTTPConnection {
    // MARK: Streams

    /// Called by the body writer (synchronously on `queue`): frames and flushes one piece, and says
    /// whether the writer must wait because more than `maxPendingStreamBytes` are left unsent.
    func streamWrite(_ bytes: [UInt8]) -> StreamWriteOutcome {
        assertOnQueue()
        guard case .open = lifecycle, var flight = current, flight.isStream else { return .failed }
        if flight.chunked { appendChunk(to: &outbound, bytes) } else { outbound.append(contentsOf: bytes) }
        flight.bodyBytes += bytes.count
        current = flight
        flush()
        guard case .open = lifecycle else { return .failed }
        return pendingBytes > configuration.maxPendingStreamBytes ? .mustWait : .sent
    }

    /// Called by the body writer (through `queue`) after `.mustWait`: suspends it until the backlog
    /// drains, or resumes it now if that happened in between.
    func waitForStreamDrain(_ continuation: CheckedContinuation<Void, any Error>) {
        assertOnQueue()
        guard case .open = lifecycle, current?.isStream == true else {
            return continuation.resume(throwing: HTTPServerError.clientDisconnected)
        }
        if pendingBytes > configuration.maxPendingStreamBytes {
            drainWaiter = continuation
        } else {
            continuation.resume()
        }
    }

    func streamFinished(_ failure: (any Error)?) {
        assertOnQueue()
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

    func flush() {
        assertOnQueue()
        guard case .open = lifecycle else { return }
        switch transport.writeAll(outbound, from: &outboundOffset) {
        case nil:
            break
        case .wouldBlock(let interest):
            if sendWindowStart == nil { (sendWindowStart, deliveredAtWindowStart) = (monotonicNow(), transport.bytesDelivered) }
            compactOutbound()
            if interest == .read {
                writeWaitsForReadable = true
                updateReadInterest()
            } else {
                setWriting(true)
            }
            if pendingBytes <= configuration.maxPendingStreamBytes / 2 { resumeDrainWaiter() }
            return
        case .failed:
            return peerClosed()
        }
        outbound.removeAll(keepingCapacity: outbound.capacity <= 256 * 1024)
        outboundOffset = 0
        sendWindowStart = nil
        setWriting(false)
        resumeDrainWaiter()
        if closeAfterFlush { beginLingeringClose() } else { startNextIfPossible() }
        publishIdleness()
    }

    func compactOutbound() {
        if outboundOffset >= 64 * 1024 && outboundOffset * 2 >= outbound.count {
            outbound.removeFirst(outboundOffset)
            outboundOffset = 0
        }
    }

    func resumeDrainWaiter() {
        drainWaiter?.resume()
        drainWaiter = nil
    }

    // MARK: Closing

    func beginLingeringClose() {
        guard case .open = lifecycle else { return }
        // Nothing unread and no request under way: a plain close cannot turn into a reset.
        if parser.phase == .idle && queued.isEmpty && !transport.hasUnreadInput { return close() }
        transport.shutdownOutput()
        lifecycle = .lingering(deadline: monotonicNow() + Self.lingerTime, discarded: 0)
        setWriting(false)
        updateReadInterest()
        publishIdleness()
        pollLingering()
    }

    /// Discards what the client still sends until it closes, it sends too much, or the linger
    /// time is over. Polled as well as driven by the read source: once both directions are shut,
    /// Dispatch on Linux drops the source's registration on the hang-up without calling its
    /// handler, so the client's close would otherwise go unnoticed until the deadline.
    func pollLingering() {
        guard case .lingering(let deadline, var discarded) = lifecycle else { return }
        reading: while true {
            switch transport.read(into: readBuffer) {
            case .done(let count):
                discarded += count
                if discarded > Self.maxLingerDiscard { return close() }
            case .wouldBlock:
                break reading
            case .closed, .failed:
                return close()  // the client has closed
            }
        }
        if monotonicNow() >= deadline { return close() }
        lifecycle = .lingering(deadline: deadline, discarded: discarded)
        queue.asyncAfter(deadline: .now() + .milliseconds(Self.lingerPollMilliseconds)) { [self] in pollLingering() }
    }

    /// Closes at once: cancels what runs for the client, wakes a suspended writer with an error.
    func close() {
        assertOnQueue()
        if case .closed = lifecycle { return }
        lifecycle = .closed
        if let flight = current {
            flight.task?.cancel()
            logAccess(flight, status: flight.status ?? 499, note: "connection closed before the response was complete")
            current = nil
        }
        drainWaiter?.resume(throwing: HTTPServerError.clientDisconnected)
        drainWaiter = nil
        queued.removeAll()
        socketEvents.cancel()
        core.connectionClosed(id)
    }

    /// The sources are gone: the socket closes, or passes to HTTP/2.
    func socketReleased() {
        if let http2Input {
            completeHandOver(http2Input)
        } else {
            transport.close(reset: resetOnClose)
        }
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
        try await connection.queue.writeStreamPiece(
            { connection.streamWrite(bytes) },
            wait: { continuation in connection.waitForStreamDrain(continuation) })
    }
}
