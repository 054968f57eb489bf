import CNGHTTP2

// MARK: - HTTP/2 protocol engine

/// The HTTP/2 side of one connection without any I/O: bytes from the client go in through
/// `receive`, bytes for the client come out of `produceOutput`. nghttp2 does the framing, HPACK
/// and flow control; this type turns its callbacks into requests (pseudo-headers, limits, the
/// request body) and queues each response's body so that nghttp2 sends it as the flow-control
/// windows allow. Not thread-safe: its owner confines it to one queue.
final class HTTP2Session {
    /// What the engine reports to its owner.
    enum Event {
        /// A complete request (head and body) on `stream`.
        case request(stream: Int32, HTTP2RequestHead, body: [UInt8])
        /// The request on `stream` is over a limit or malformed: the owner answers `status`, no handler runs.
        case refused(stream: Int32, status: Int, message: String, method: String?, path: String?)
        /// The stream is gone (finished, or reset by the client): whatever runs for it stops.
        case closed(stream: Int32)
    }

    let limits: HTTP2Limits
    /// Takes the events; called from inside `receive` and `produceOutput`.
    var onEvent: (Event) -> Void = { _ in }

    private(set) var session: OpaquePointer!
    var streams: [Int32: HTTP2StreamState] = [:]
    /// A request's header block is being received (HEADERS without END_HEADERS yet), since then.
    private(set) var headerBlockStartedAt: UInt64?
    private var resetWindowStart: UInt64 = 0
    private var resetsInWindow = 0
    /// The client exceeded a flood cap: GOAWAY(ENHANCE_YOUR_CALM) is queued, the connection ends.
    private(set) var enhanceYourCalm = false
    /// A fatal protocol error: the connection must close once the pending output (a GOAWAY) is out.
    private(set) var failed = false
    /// GOAWAY for graceful shutdown has been queued.
    private(set) var goingAway = false

    init(limits: HTTP2Limits) {
        self.limits = limits
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        installCallbacks(callbacks!)
        var option: OpaquePointer?
        nghttp2_option_new(&option)
        defer { nghttp2_option_del(option) }
        // Flood defences nghttp2 provides: a cap on queued SETTINGS/PING acknowledgements (a
        // client that sends them without reading our output), on entries per SETTINGS frame,
        // and on CONTINUATION frames per header block.
        nghttp2_option_set_max_outbound_ack(option, limits.maxOutboundAcks)
        nghttp2_option_set_max_settings(option, limits.maxSettingsEntries)
        nghttp2_option_set_max_continuations(option, limits.maxContinuations)
        // Our HPACK encoder's table stays small: it is memory we hold per connection.
        nghttp2_option_set_max_deflate_dynamic_table_size(option, 4096)
        var created: OpaquePointer?
        let result = nghttp2_session_server_new2(&created, callbacks, Unmanaged.passUnretained(self).toOpaque(), option)
        precondition(result == 0 && created != nil, "nghttp2_session_server_new2 failed: \(result)")
        session = created
        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: UInt32(limits.maxConcurrentStreams)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: UInt32(limits.maxHeaderListBytes)),
            // The decoder's table (what an HPACK bomb would inflate from) stays at the default 4 KiB.
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_HEADER_TABLE_SIZE.rawValue), value: 4096),
        ]
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
    }

    deinit { nghttp2_session_del(session) }

    // MARK: Input and output

    /// Feeds bytes from the client. Returns false on a fatal protocol error (a bad preface, a
    /// flood): the connection should send what is pending (a GOAWAY, when nghttp2 made one) and close.
    @discardableResult
    func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !failed else { return false }
        let result = nghttp2_session_mem_recv(session, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
        if result < 0 { failed = true }
        return !failed
    }

    /// Appends frames nghttp2 has ready to `out` until it holds `limit` bytes (the rest stays
    /// queued inside nghttp2, whose body reads wait in turn: memory stays bounded).
    func produceOutput(into out: inout [UInt8], limit: Int) {
        while out.count < limit {
            var data: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(session, &data)
            if count < 0 {
                failed = true
                return
            }
            guard count > 0, let data else { return }
            out.append(contentsOf: UnsafeBufferPointer(start: data, count: count))
        }
    }

    /// Continues an HTTP/1.1 request that upgraded the connection as stream 1, half-closed
    /// (remote): its response goes out there. Settings nghttp2 rejects end the connection
    /// (GOAWAY PROTOCOL_ERROR), as they would in a SETTINGS frame.
    func acceptUpgrade(settingsPayload: [UInt8], head: HTTP2RequestHead, body: [UInt8]) {
        let result = settingsPayload.withUnsafeBufferPointer {
            nghttp2_session_upgrade2(session, $0.baseAddress, $0.count, head.method == "HEAD" ? 1 : 0, nil)
        }
        guard result == 0 else {
            nghttp2_session_terminate_session(session, NGHTTP2_PROTOCOL_ERROR.rawValue)
            return
        }
        let stream = HTTP2StreamState(id: 1, now: monotonicNow())
        stream.method = head.method
        stream.dispatched = true
        streams[1] = stream
        onEvent(.request(stream: 1, head, body: body))
    }

    /// Whether the connection still has work: streams open, or frames to send or receive.
    var isFinished: Bool {
        nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0
    }

    /// Queues GOAWAY(NO_ERROR) naming the last stream processed: streams up to it finish, no new ones start.
    func goAway() {
        guard !goingAway else { return }
        goingAway = true
        nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session),
                              NGHTTP2_NO_ERROR.rawValue, nil, 0)
    }

    // MARK: Responses

    /// Sends a response head, with its body (`body` nil: a stream whose pieces follow via `appendBody`).
    func respond(stream id: Int32, status: Int, headers: HTTPHeaders, requestID: String, date: String, body: [UInt8]?, headOnly: Bool) {
        guard let stream = streams[id], !stream.responded else { return }
        stream.responded = true
        let noBody = headOnly || statusForbidsBody(status)
        var fields = responseFields(status: status, headers: headers, requestID: requestID, date: date)
        if let body, !statusForbidsBody(status) { fields.append(("content-length", String(body.count))) }
        if let body, !noBody {
            stream.appendBody(body)
        }
        stream.bodyEnded = body != nil || noBody
        withHeaderList(fields) { list in
            if noBody || body?.isEmpty == true {
                nghttp2_submit_response(session, id, list.baseAddress, list.count, nil)
            } else {
                var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: readBodyCallback)
                nghttp2_submit_response(session, id, list.baseAddress, list.count, &provider)
            }
        }
    }

    /// Queues one piece of a streamed body; nghttp2 sends it as one DATA frame as soon as the
    /// client's flow-control window allows. Returns the bytes now waiting on the stream.
    func appendBody(stream id: Int32, _ bytes: [UInt8]) -> Int? {
        guard let stream = streams[id], !stream.bodyEnded else { return nil }
        stream.appendBody(bytes)
        resumeIfDeferred(stream)
        return stream.queuedBytes
    }

    /// Ends a streamed body (END_STREAM on the last DATA frame).
    func endBody(stream id: Int32) {
        guard let stream = streams[id], !stream.bodyEnded else { return }
        stream.bodyEnded = true
        resumeIfDeferred(stream)
    }

    /// Resets a stream (the handler failed half way, or the client stopped reading it).
    func reset(stream id: Int32, code: nghttp2_error_code) {
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, code.rawValue)
    }

    /// The client sent GOAWAY: it will read no more answers, so every open stream is reset
    /// (CANCEL), and closing each one stops what runs for it, as a RST_STREAM from the client would.
    func clientWentAway() {
        for id in streams.keys.sorted() { reset(stream: id, code: NGHTTP2_CANCEL) }
    }

    private func resumeIfDeferred(_ stream: HTTP2StreamState) {
        guard stream.deferred else { return }
        stream.deferred = false
        nghttp2_session_resume_data(session, stream.id)
    }

    /// Stops a request over a limit or malformed: the owner answers it (no handler runs).
    func refuse(_ stream: HTTP2StreamState, status: Int, message: String) {
        guard !stream.answeredByServer, !stream.dispatched else { return }
        stream.answeredByServer = true
        stream.body = []
        onEvent(.refused(stream: stream.id, status: status, message: message, method: stream.method, path: stream.path))
    }

    // MARK: Flood accounting

    /// Counts a RST_STREAM from the client: past `maxResetsPerWindow` within `resetWindow`, the
    /// connection is told to calm down (the rapid-reset attack makes the server start and cancel
    /// work for every stream it opens and resets at once).
    func countClientReset(now: UInt64) {
        if now &- resetWindowStart > limits.resetWindowNanoseconds {
            (resetWindowStart, resetsInWindow) = (now, 0)
        }
        resetsInWindow += 1
        if resetsInWindow > limits.maxResetsPerWindow { calmDown() }
    }

    func calmDown() {
        guard !enhanceYourCalm else { return }
        enhanceYourCalm = true
        nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session),
                              NGHTTP2_ENHANCE_YOUR_CALM.rawValue, nil, 0)
    }

    func headerBlockBegan(now: UInt64) {
        headerBlockStartedAt = now
    }

    func headerBlockEnded() { headerBlockStartedAt = nil }
}

// MARK: - Limits

/// The caps one HTTP/2 connection enforces.
struct HTTP2Limits {
    var maxConcurrentStreams = 100
    /// Header list size as HPACK counts it (name + value + 32 per field); beyond: 431.
    var maxHeaderListBytes = 16 * 1024
    var maxHeaderCount = 100
    var maxBodyBytes = 1 << 20
    var maxOutboundAcks = 1000
    var maxSettingsEntries = 32
    var maxContinuations = 8
    var maxResetsPerWindow = 200
    var resetWindowNanoseconds: UInt64 = 10_000_000_000

    init() {}

    init(_ configuration: HTTPServerConfiguration) {
        maxConcurrentStreams = configuration.maxConcurrentStreams
        maxHeaderListBytes = configuration.maxHeaderBytes
        maxHeaderCount = configuration.maxHeaderCount
        maxBodyBytes = configuration.maxBodyBytes
    }
}

// MARK: - Response header list

/// The response's fields for HPACK: lower-case names, no connection-specific fields (RFC 9113
/// §8.2.2), nothing that could not be sent over HTTP/1.1 either.
private func responseFields(status: Int, headers: HTTPHeaders, requestID: String, date: String) -> [(String, String)] {
    var fields: [(String, String)] = [(":status", String(status))]
    var sawDate = false, sawRequestID = false
    for (name, value) in headers {
        let lower = name.lowercased()
        if ["content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "upgrade"].contains(lower) { continue }
        guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte),
              value.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F || $0 == .tab }) else { continue }
        sawDate = sawDate || lower == "date"
        sawRequestID = sawRequestID || lower == "x-request-id"
        fields.append((lower, value))
    }
    if !sawDate { fields.append(("date", date)) }
    if !sawRequestID { fields.append(("x-request-id", requestID)) }
    return fields
}

/// Calls `body` with an `nghttp2_nv` array pointing into contiguous copies of the fields
/// (nghttp2 copies them during the call).
private func withHeaderList<T>(_ fields: [(String, String)], _ body: (UnsafeMutableBufferPointer<nghttp2_nv>) -> T) -> T {
    var storage: [UInt8] = []
    for (name, value) in fields {
        storage.append(contentsOf: name.utf8)
        storage.append(contentsOf: value.utf8)
    }
    return storage.withUnsafeMutableBufferPointer { bytes in
        var list: [nghttp2_nv] = []
        list.reserveCapacity(fields.count)
        var offset = 0
        for (name, value) in fields {
            let nameCount = name.utf8.count, valueCount = value.utf8.count
            let base = bytes.baseAddress! + offset  // never empty: ":status" is always there
            list.append(nghttp2_nv(name: base, value: base + nameCount, namelen: nameCount, valuelen: valueCount,
                                   flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
            offset += nameCount + valueCount
        }
        return list.withUnsafeMutableBufferPointer { body($0) }
    }
}
