import CNGHTTP2

// MARK: - nghttp2 callbacks
// nghttp2 calls these from inside `nghttp2_session_mem_recv`/`mem_send`, on the owner's queue;
// `user_data` is the engine (unretained: the engine owns the session and deletes it in deinit).

extension HTTP2Session {
    func installCallbacks(_ callbacks: OpaquePointer) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            let engine = HTTP2Session.from(userData)
            guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
                  frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST else { return 0 }
            let now = monotonicNow()
            engine.streams[frame.pointee.hd.stream_id] = HTTP2StreamState(id: frame.pointee.hd.stream_id, now: now)
            engine.headerBlockBegan(now: now)
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameLength, value, valueLength, _, userData in
            let engine = HTTP2Session.from(userData)
            guard let frame, let name, let value, frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST,
                  let stream = engine.streams[frame.pointee.hd.stream_id] else { return 0 }
            engine.headerField(stream, UnsafeBufferPointer(start: name, count: nameLength), UnsafeBufferPointer(start: value, count: valueLength))
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            guard let frame else { return 0 }
            HTTP2Session.from(userData).frameReceived(frame.pointee.hd, isRequestHeaders: frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue)
                && frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST)
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, length, userData in
            let engine = HTTP2Session.from(userData)
            guard let data, let stream = engine.streams[streamID] else { return 0 }
            engine.bodyReceived(stream, UnsafeBufferPointer(start: data, count: length))
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { session, frame, userData in
            // After the server's own answer (413, 408...) the rest of the request is unwanted:
            // RST_STREAM(NO_ERROR) stops the upload (RFC 9113 §8.1), once the answer is out.
            guard let frame, frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0,
                  let stream = HTTP2Session.from(userData).streams[frame.pointee.hd.stream_id], stream.answeredByServer,
                  nghttp2_session_get_stream_remote_close(session, stream.id) == 0 else { return 0 }
            nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream.id, NGHTTP2_NO_ERROR.rawValue)
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, _, userData in
            let engine = HTTP2Session.from(userData)
            guard engine.streams.removeValue(forKey: streamID) != nil else { return 0 }
            engine.onEvent(.closed(stream: streamID))
            return 0
        }
    }

    static func from(_ userData: UnsafeMutableRawPointer?) -> HTTP2Session {
        Unmanaged<HTTP2Session>.fromOpaque(userData!).takeUnretainedValue()
    }

    // MARK: Request assembly

    func headerField(_ stream: HTTP2StreamState, _ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) {
        // Counted as HPACK counts it, so that a list that expands from few bytes on the wire (an
        // HPACK bomb: one table entry referenced again and again) meets the same cap.
        stream.headerListBytes += name.count + value.count + 32
        stream.headerCount += 1
        guard stream.headerListBytes <= limits.maxHeaderListBytes, stream.headerCount <= limits.maxHeaderCount else { return }
        // nghttp2 has checked the field (RFC 9113 §8.2): lower-case name, no forbidden bytes.
        let nameText = String(decoding: name, as: UTF8.self)
        let valueText = String(decoding: value, as: UTF8.self)
        switch nameText {
        case ":method": stream.method = valueText
        case ":path": stream.path = valueText
        case ":authority": stream.authority = valueText
        case ":scheme", ":protocol": break
        default:
            if nameText == "content-length" {
                guard let length = Int(valueText), length >= 0 else {
                    stream.malformed = "invalid content-length"
                    return
                }
                stream.declaredLength = length
            }
            stream.headers.add(name: nameText, value: valueText)
        }
    }

    func frameReceived(_ header: nghttp2_frame_hd, isRequestHeaders: Bool) {
        let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch Int(header.type) {
        case Int(NGHTTP2_HEADERS.rawValue):
            guard let stream = streams[header.stream_id] else { return }
            if isRequestHeaders {
                headerBlockEnded()
                checkHead(stream)
            }
            if endStream { dispatch(stream) }
        case Int(NGHTTP2_DATA.rawValue):
            guard endStream, let stream = streams[header.stream_id] else { return }
            dispatch(stream)
        case Int(NGHTTP2_RST_STREAM.rawValue):
            countClientReset(now: monotonicNow())
        case Int(NGHTTP2_GOAWAY.rawValue):
            clientWentAway()
        default:
            break
        }
    }

    /// Limits that the head alone decides, as the HTTP/1.1 parser applies them.
    private func checkHead(_ stream: HTTP2StreamState) {
        if stream.headerListBytes > limits.maxHeaderListBytes || stream.headerCount > limits.maxHeaderCount {
            return refuse(stream, status: 431, message: "request header fields too large")
        }
        if let length = stream.declaredLength, length > limits.maxBodyBytes {
            return refuse(stream, status: 413, message: "request body larger than \(limits.maxBodyBytes) bytes")
        }
        switch stream.requestHead() {
        case .failure(.malformed(let reason)): refuse(stream, status: 400, message: "malformed request: \(reason)")
        case .failure(.methodNotAllowed): refuse(stream, status: 405, message: "CONNECT is not supported")
        case .success: break
        }
    }

    func bodyReceived(_ stream: HTTP2StreamState, _ bytes: UnsafeBufferPointer<UInt8>) {
        guard stream.isReceivingBody else { return }
        stream.lastReceivedAt = monotonicNow()
        guard stream.body.count + bytes.count <= limits.maxBodyBytes else {
            return refuse(stream, status: 413, message: "request body larger than \(limits.maxBodyBytes) bytes")
        }
        stream.body.append(contentsOf: bytes)
    }

    private func dispatch(_ stream: HTTP2StreamState) {
        guard !stream.dispatched, !stream.answeredByServer else { return }
        stream.dispatched = true
        guard case .success(let head) = stream.requestHead() else { return }
        let body = stream.body
        stream.body = []
        onEvent(.request(stream: stream.id, head, body: body))
    }
}

// MARK: - Response bodies

/// nghttp2 asks for the next DATA frame's payload: one queued piece (or part of it); none yet
/// defers the stream until `resume_data`; the last piece of an ended body carries END_STREAM.
let readBodyCallback: nghttp2_data_source_read_callback = { _, streamID, buffer, length, flags, _, userData in
    let engine = HTTP2Session.from(userData)
    guard let stream = engine.streams[streamID], let buffer, let flags else {
        return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
    }
    let count = stream.takeBody(into: buffer, capacity: length)
    if stream.queuedBytes == 0 && stream.bodyEnded {
        flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
    } else if count == 0 {
        stream.deferred = true
        return Int(NGHTTP2_ERR_DEFERRED.rawValue)
    }
    return count
}
