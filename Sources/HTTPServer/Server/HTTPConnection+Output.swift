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

    /// Called by the body writer (through `queue`): frames and flushes one piece, and suspends the
    /// writer while more than `maxPendingStreamBytes` wait unsent.
    func streamWrite(_ bytes: [UInt8], _ continuation: CheckedContinuation<Void, any Error>) {
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

    func streamFinished(_ failure: (any Error)?) {
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
        guard case .open = lifecycle else { return }
        while outboundOffset < outbound.count {
            let written = outbound.withUnsafeBytes { bytes in
                sendBytes(fd, bytes.baseAddress! + outboundOffset, bytes.count - outboundOffset)
            }
            if written > 0 {
                outboundOffset += written
                bytesWritten += written
                continue
            }
            let code = errno
            if written < 0 && code == EINTR { continue }
            if written < 0 && (code == EAGAIN || code == EWOULDBLOCK) {
                if sendWindowStart == nil { (sendWindowStart, deliveredAtWindowStart) = (monotonicNow(), bytesDelivered) }
                compactOutbound()
                setWriting(true)
                if pendingBytes <= configuration.maxPendingStreamBytes / 2 { resumeDrainWaiter() }
                return
            }
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

    /// Bytes the client's TCP has taken.
    var bytesDelivered: Int { bytesWritten - unacknowledgedBytes(fd) }

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
        if parser.phase == .idle && queued.isEmpty && bytesWaitingToBeRead(fd) == 0 { return close() }
        shutdown(fd, Int32(SHUT_WR))
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
        while true {
            let count = recv(fd, readBuffer.baseAddress, readBuffer.count, Int32(MSG_DONTWAIT))
            if count > 0 {
                discarded += count
                if discarded > Self.maxLingerDiscard { return close() }
                continue
            }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { break }
            return close()  // EOF or reset: the client has closed
        }
        if monotonicNow() >= deadline { return close() }
        lifecycle = .lingering(deadline: deadline, discarded: discarded)
        queue.asyncAfter(deadline: .now() + .milliseconds(Self.lingerPollMilliseconds)) { [self] in pollLingering() }
    }

    /// Closes at once: cancels what runs for the client, wakes a suspended writer with an error.
    func close() {
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

    func sourceCancelled() {
        cancelledSources += 1
        guard cancelledSources == 2 else { return }
        closeSocket(fd)
        // The sources' handlers hold the connection: dropping the sources breaks that cycle.
        readSource = nil
        writeSource = nil
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
