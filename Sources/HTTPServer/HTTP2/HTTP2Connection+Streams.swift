import CNGHTTP2
import Dispatch
import Logging

// MARK: - Streams: requests to handlers, responses back

extension HTTP2Connection {
    func handle(_ event: HTTP2Session.Event) {
        switch event {
        case .request(let stream, let head, let body):
            startHandler(stream: stream, head: head, body: body)
        case .refused(let stream, let status, let message, let method, let path):
            answerOnServerBehalf(stream: stream, status: status, message: message, method: method, path: path)
        case .closed(let stream):
            guard let exchange = exchanges.removeValue(forKey: stream) else { return }
            // Reset by the client (RST_STREAM, or GOAWAY below the stream): what runs for it stops.
            exchange.task?.cancel()
            exchange.writerWaiter?.resume(throwing: HTTPServerError.clientDisconnected)
            writeAccessLog(exchange.record, status: exchange.status ?? 499, note: "stream closed before the response was complete",
                      logger: logger, level: configuration.accessLogLevel)
        }
    }

    private func startHandler(stream: Int32, head: HTTP2RequestHead, body: [UInt8]) {
        let requestID = head.headers["x-request-id"].flatMap(acceptableRequestID) ?? requestIDs.next(connection: id)
        let request = HTTPRequest(method: head.method, target: head.target, headers: head.headers, body: body,
                                  requestID: requestID, protocolVersion: "HTTP/2")
        var exchange = Exchange(record: AccessRecord(method: head.method, path: request.path, protocolVersion: "HTTP/2",
                                                     requestID: requestID, start: monotonicNow()))
        let handler = self.handler
        exchange.task = Task { [self] in
            let response = await handler(request)
            queue.async { [self] in responseReady(stream: stream, response) }
        }
        exchanges[stream] = exchange
        publishIdleness()
    }

    func responseReady(stream: Int32, _ response: HTTPResponse) {
        assertOnQueue()
        guard !isClosed, var exchange = exchanges[stream] else { return }
        exchange.task = nil
        exchange.status = response.status
        let headOnly = exchange.record.method == "HEAD"
        let (requestID, date) = (exchange.record.requestID, dateCache.current())
        switch response.body {
        case .bytes(let bytes):
            session.respond(stream: stream, status: response.status, headers: response.headers, requestID: requestID,
                            date: date, body: bytes, headOnly: headOnly)
            exchange.record.bodyBytes = headOnly ? 0 : bytes.count
            exchanges[stream] = nil
            writeAccessLog(exchange.record, status: response.status, logger: logger, level: configuration.accessLogLevel)
        case .stream where headOnly || statusForbidsBody(response.status):
            session.respond(stream: stream, status: response.status, headers: response.headers, requestID: requestID,
                            date: date, body: [], headOnly: true)
            exchanges[stream] = nil
            writeAccessLog(exchange.record, status: response.status, logger: logger, level: configuration.accessLogLevel)
        case .stream(let produce):
            session.respond(stream: stream, status: response.status, headers: response.headers, requestID: requestID,
                            date: date, body: nil, headOnly: false)
            let writer = HTTP2BodyWriter(connection: self, stream: stream)
            exchange.task = startProducer(produce, writer: writer) { [self] failure in streamFinished(stream: stream, failure) }
            exchanges[stream] = exchange
        }
        flush()
    }

    /// Called by the body writer (synchronously on `queue`): queues one piece as its own DATA frame
    /// and flushes; says whether the writer must wait because the stream holds more than
    /// `maxPendingStreamBytes` (the client's flow-control window, or its reading, decides how fast
    /// that drains).
    func streamWrite(stream: Int32, _ bytes: [UInt8]) -> StreamWriteOutcome {
        assertOnQueue()
        guard !isClosed, exchanges[stream] != nil, let queued = session.appendBody(stream: stream, bytes) else { return .failed }
        exchanges[stream]?.record.bodyBytes += bytes.count
        flush()
        return queued > configuration.maxPendingStreamBytes ? .mustWait : .sent
    }

    /// Called by the body writer (through `queue`) after `.mustWait`: suspends it until the stream's
    /// backlog drains, or resumes it now if that happened in between.
    func waitForStreamDrain(stream: Int32, _ continuation: CheckedContinuation<Void, any Error>) {
        assertOnQueue()
        guard !isClosed, exchanges[stream] != nil else {
            return continuation.resume(throwing: HTTPServerError.clientDisconnected)
        }
        if (session.streams[stream]?.queuedBytes ?? 0) > configuration.maxPendingStreamBytes {
            exchanges[stream]?.writerWaiter = continuation
        } else {
            continuation.resume()
        }
    }

    func streamFinished(stream: Int32, _ failure: (any Error)?) {
        assertOnQueue()
        guard !isClosed, let exchange = exchanges.removeValue(forKey: stream) else { return }
        if let failure {
            // The status is long sent: a reset is the honest end of a body that failed half way.
            logger.warning("stream failed", metadata: ["request_id": "\(exchange.record.requestID)", "error": "\(failure)"])
            session.reset(stream: stream, code: NGHTTP2_INTERNAL_ERROR)
        } else {
            session.endBody(stream: stream)
        }
        writeAccessLog(exchange.record, status: exchange.status ?? 500, logger: logger, level: configuration.accessLogLevel)
        flush()
    }

    private func answerOnServerBehalf(stream: Int32, status: Int, message: String, method: String?, path: String?) {
        var response = configuration.makeErrorResponse(status, message)
        if case .stream = response.body { response = .jsonError(status: status, message: message) }
        guard case .bytes(let body) = response.body else { return }
        let path = path.map { String($0.prefix { $0 != "?" }) }
        configuration.onServerAnswer?(ServerAnswer(status: status, method: method, path: path))
        var record = AccessRecord(method: method ?? "-", path: path ?? "-", protocolVersion: "HTTP/2",
                                  requestID: requestIDs.next(connection: id), start: monotonicNow())
        record.bodyBytes = body.count
        session.respond(stream: stream, status: status, headers: response.headers, requestID: record.requestID,
                        date: dateCache.current(), body: body, headOnly: method == "HEAD")
        writeAccessLog(record, status: status, logger: logger, level: configuration.accessLogLevel)
    }
}

// MARK: - Body writer

/// The `HTTPBodyWriter` handed to a stream's producer: each write leaves as its own DATA frame.
struct HTTP2BodyWriter: HTTPBodyWriter {
    let connection: HTTP2Connection
    let stream: Int32

    func write(_ bytes: [UInt8]) async throws {
        try Task.checkCancellation()
        guard !bytes.isEmpty else { return }
        try await connection.queue.writeStreamPiece(
            { connection.streamWrite(stream: stream, bytes) },
            wait: { continuation in connection.waitForStreamDrain(stream: stream, continuation) })
    }
}
