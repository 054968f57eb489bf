// MARK: - One stream's state inside the engine

/// The request as the pseudo-header fields and regular fields gave it.
struct HTTP2RequestHead {
    var method: String
    /// `:path`, which is the request target in origin form.
    var target: String
    var headers: HTTPHeaders
}

/// A stream from HEADERS to close: the request being received, then the response body waiting
/// for nghttp2 to send it.
final class HTTP2StreamState {
    let id: Int32

    // MARK: Request side
    var method: String?
    var path: String?
    var authority: String?
    var headers = HTTPHeaders()
    /// Header list size as HPACK counts it; past the limit fields are no longer kept.
    var headerListBytes = 0
    var headerCount = 0
    var malformed: String?
    var declaredLength: Int?
    var body: [UInt8] = []
    /// When the last body bytes arrived (the body timeout runs between reads).
    var lastReceivedAt: UInt64
    /// Handed to the owner (a handler runs), or answered by the engine.
    var dispatched = false
    var answeredByServer = false

    // MARK: Response side
    var responded = false
    /// Body pieces not yet taken by nghttp2; each becomes its own DATA frame (or several, when a
    /// piece is larger than the frame size or the window).
    private var pieces: [[UInt8]] = []
    private var firstPiece = 0
    private var offsetInFirst = 0
    private(set) var queuedBytes = 0
    var bodyEnded = false
    /// nghttp2 asked for body bytes while none were queued, and waits for `resume_data`.
    var deferred = false
    /// When nghttp2 last took body bytes, or when bytes started waiting (the stall timeout).
    var lastSentAt: UInt64

    init(id: Int32, now: UInt64) {
        self.id = id
        (lastReceivedAt, lastSentAt) = (now, now)
    }

    var isReceivingBody: Bool { !dispatched && !answeredByServer && method != nil }

    func appendBody(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        if queuedBytes == 0 { lastSentAt = monotonicNow() }
        pieces.append(bytes)
        queuedBytes += bytes.count
    }

    /// Copies up to `capacity` bytes of the first waiting piece into `destination` (never
    /// across pieces, so that each write of a stream leaves as its own DATA frame).
    func takeBody(into destination: UnsafeMutablePointer<UInt8>, capacity: Int) -> Int {
        guard firstPiece < pieces.count else { return 0 }
        let count = pieces[firstPiece].withUnsafeBufferPointer { piece in
            let count = min(capacity, piece.count - offsetInFirst)
            destination.update(from: piece.baseAddress! + offsetInFirst, count: count)
            return count
        }
        offsetInFirst += count
        queuedBytes -= count
        lastSentAt = monotonicNow()
        if offsetInFirst == pieces[firstPiece].count {
            pieces[firstPiece] = []
            firstPiece += 1
            offsetInFirst = 0
            if firstPiece == pieces.count || firstPiece >= 64 {
                pieces.removeFirst(firstPiece)
                firstPiece = 0
            }
        }
        return count
    }

    /// The request head, or why the request is malformed (RFC 9113 §8.3.1).
    func requestHead() -> Result<HTTP2RequestHead, HTTP2RequestError> {
        if let malformed { return .failure(.malformed(malformed)) }
        guard let method, !method.isEmpty else { return .failure(.malformed("missing :method")) }
        guard method != "CONNECT" else { return .failure(.methodNotAllowed) }
        guard let path, !path.isEmpty else { return .failure(.malformed("missing :path")) }
        var headers = headers
        // HTTP/1.1 handlers and logs look for Host: :authority is its HTTP/2 form.
        if let authority, !headers.contains(name: "host") { headers.add(name: "Host", value: authority) }
        return .success(HTTP2RequestHead(method: method, target: path, headers: headers))
    }
}

enum HTTP2RequestError: Error {
    case malformed(String)
    case methodNotAllowed
}
