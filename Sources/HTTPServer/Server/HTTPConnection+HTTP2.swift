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
        let successor = HTTP2Connection(id: id, transport: transport, logger: logger, core: core, queue: queue, input: input,
                                        upgrade: h2cUpgrade)
        core.replaceConnection(id, with: successor)
    }
}

// MARK: - Upgrade: h2c (RFC 7540 §3.2)

/// An HTTP/1.1 request that asked to continue as HTTP/2: it becomes stream 1, its SETTINGS
/// payload the client's initial settings.
struct H2CUpgrade {
    var settingsPayload: [UInt8]
    var head: HTTP2RequestHead
    var body: [UInt8]
}

extension HTTPConnection {
    /// The upgrade the request asks for, when it may be granted: the first request on a cleartext
    /// connection with nothing after it, naming `h2c` in Upgrade and both `Upgrade` and
    /// `HTTP2-Settings` in Connection, with exactly one well-formed HTTP2-Settings field.
    /// Otherwise (TLS, a missing or malformed field) the Upgrade field is ignored, as nginx does.
    func h2cUpgrade(_ head: HTTPRequestHead, _ body: [UInt8]) -> H2CUpgrade? {
        guard servedRequests == 0, queued.isEmpty, parser.phase == .idle, !shuttingDown, head.version == .http11,
              !(transport is TLSTransport), head.method != "CONNECT" else { return nil }
        let upgrade = listElements(head.headers.values(for: "Upgrade")).map { $0.lowercased() }
        let connection = Set(listElements(head.headers.values(for: "Connection")).map { $0.lowercased() })
        let settings = head.headers.values(for: "HTTP2-Settings")
        guard upgrade.contains("h2c"), connection.contains("upgrade"), connection.contains("http2-settings"),
              settings.count == 1, let payload = decodeBase64URL(settings[0]), payload.count % 6 == 0 else { return nil }
        var headers = head.headers
        for name in ["Connection", "Upgrade", "HTTP2-Settings"] { headers.remove(name: name) }
        return H2CUpgrade(settingsPayload: payload, head: HTTP2RequestHead(method: head.method, target: head.target, headers: headers),
                          body: body)
    }

    func upgradeToHTTP2(_ upgrade: H2CUpgrade) {
        h2cUpgrade = upgrade
        handOverToHTTP2([])
    }
}

/// The response that switches the connection; HTTP/2 frames follow it.
let h2cSwitchingProtocols = Array("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".utf8)

/// base64url without padding (RFC 4648 §5), as HTTP2-Settings carries it; nil when malformed.
func decodeBase64URL(_ text: String) -> [UInt8]? {
    var bits: UInt32 = 0, bitCount = 0
    var out: [UInt8] = []
    for byte in text.utf8 {
        let value: UInt8
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): value = byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): value = 62
        case UInt8(ascii: "_"): value = 63
        default: return nil
        }
        bits = bits << 6 | UInt32(value)
        bitCount += 6
        if bitCount >= 8 {
            bitCount -= 8
            out.append(UInt8(truncatingIfNeeded: bits >> UInt32(bitCount)))
        }
    }
    // A lone trailing character (6 bits) cannot end a valid encoding.
    return bitCount == 6 ? nil : out
}
