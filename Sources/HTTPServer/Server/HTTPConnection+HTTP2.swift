// MARK: - Handing a new connection to HTTP/2

/// The client connection preface (RFC 9113 §3.4): an HTTP/2 client by prior knowledge starts with it.
let http2ConnectionPreface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

extension HTTPConnection {
    enum ProtocolDecision {
        /// HTTP/1.1: parse these bytes (nil: the ones just read, still in the read buffer).
        case http1([UInt8]?)
        /// Too few bytes to tell yet; they are kept.
        case undecided
        case http2([UInt8])
    }

    /// Before the first request: ALPN's `h2`, or bytes that begin with the connection preface,
    /// make the connection HTTP/2.
    func decideProtocol(_ input: UnsafeRawBufferPointer) -> ProtocolDecision {
        let bytes = prefaceProbe + input
        if transport.negotiatedProtocol == "h2" { return .http2(bytes) }
        let compared = min(bytes.count, http2ConnectionPreface.count)
        guard bytes[..<compared].elementsEqual(http2ConnectionPreface[..<compared]) else {
            protocolDecided = true
            return .http1(prefaceProbe.isEmpty ? nil : bytes)
        }
        if compared < http2ConnectionPreface.count {
            prefaceProbe = bytes
            return .undecided
        }
        return .http2(bytes)
    }

    /// Gives the socket to an `HTTP2Connection` once this connection's sources are gone.
    func handOverToHTTP2(_ input: [UInt8]) {
        lifecycle = .closed
        http2Input = input
        socketEvents.cancel()
    }

    /// The sources are gone: the HTTP/2 connection takes over the transport, id and queue.
    func completeHandOver(_ input: [UInt8]) {
        let successor = HTTP2Connection(id: id, transport: transport, logger: logger, core: core, queue: queue, input: input)
        core.replaceConnection(id, with: successor)
    }
}
