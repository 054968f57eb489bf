// MARK: - The engine without a socket

/// The HTTP/2 engine (nghttp2 with our callbacks) with the connection's side reduced to
/// answering every request at once: lets the fuzzer feed raw bytes as a client would, through
/// the same request assembly, limits, response bodies and flood accounting as a connection.
package final class HTTP2EngineDriver {
    private let session: HTTP2Session
    let limits: HTTP2Limits
    /// Requests handed over, with their body sizes and header counts (for the fuzzer's checks).
    package private(set) var requests: [(bodyBytes: Int, headerCount: Int)] = []
    package private(set) var refusals: [Int] = []
    package private(set) var outputBytes = 0
    private var output: [UInt8] = []

    package init(maxConcurrentStreams: Int, maxHeaderListBytes: Int, maxHeaderCount: Int, maxBodyBytes: Int) {
        var limits = HTTP2Limits()
        limits.maxConcurrentStreams = maxConcurrentStreams
        limits.maxHeaderListBytes = maxHeaderListBytes
        limits.maxHeaderCount = maxHeaderCount
        limits.maxBodyBytes = maxBodyBytes
        self.limits = limits
        session = HTTP2Session(limits: limits)
        session.onEvent = { [unowned self] event in answer(event) }
    }

    /// Feeds client bytes and sends everything the engine then has; false once the session has
    /// failed (a protocol error or a flood cap: a connection would close).
    package func feed(_ bytes: [UInt8]) -> Bool {
        let alive = bytes.withUnsafeBytes { session.receive($0) }
        drain()
        return alive && !session.failed && !session.enhanceYourCalm
    }

    package var openStreams: Int { session.streams.count }

    private func drain() {
        while true {
            output.removeAll(keepingCapacity: true)
            session.produceOutput(into: &output, limit: 64 * 1024)
            guard !output.isEmpty else { return }
            outputBytes += output.count
        }
    }

    /// Odd requests get a body at once, even ones a streamed body in two pieces (the deferred
    /// data path), so that both response paths meet whatever the client does meanwhile.
    private func answer(_ event: HTTP2Session.Event) {
        switch event {
        case .request(let stream, let head, let body):
            requests.append((body.count, head.headers.fields.count))
            if requests.count % 2 == 1 {
                session.respond(stream: stream, status: 200, headers: ["content-type": "text/plain"], requestID: "fuzz",
                                date: "-", body: body, headOnly: head.method == "HEAD")
            } else {
                session.respond(stream: stream, status: 200, headers: [:], requestID: "fuzz", date: "-", body: nil, headOnly: false)
                _ = session.appendBody(stream: stream, Array("data: 1\n\n".utf8))
                drain()
                _ = session.appendBody(stream: stream, body)
                session.endBody(stream: stream)
            }
        case .refused(let stream, let status, _, let method, _):
            refusals.append(status)
            session.respond(stream: stream, status: status, headers: [:], requestID: "fuzz", date: "-", body: [], headOnly: method == "HEAD")
        case .closed:
            break
        }
    }
}
