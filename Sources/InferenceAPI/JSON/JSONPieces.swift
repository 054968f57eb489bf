import HTTPServer

// MARK: - A body encoded piece by piece

/// A JSON object whose `arrayKey` array (its last key but those of `prefix` after it) is produced one
/// element at a time: `pieces` yields the object's bytes in order, each element encoded only when asked.
struct JSONPieces: Sendable {
    /// The object with `arrayKey` set to an empty array.
    let head: [UInt8]
    let tail: [UInt8]
    let count: Int
    let element: @Sendable (Int) -> JSONValue

    init(prefix: JSONValue, arrayKey: String, count: Int, element: @escaping @Sendable (Int) -> JSONValue) {
        // `{..."choices":[]...}` split around the empty array: the elements go between the brackets.
        let whole = prefix.encoded
        let marker = Array("\"\(arrayKey)\":[]".utf8)
        let at = whole.indices.first { whole[$0...].starts(with: marker) }!
        head = Array(whole[..<(at + marker.count - 1)])
        tail = Array(whole[(at + marker.count - 1)...])
        self.count = count
        self.element = element
    }

    /// Piece 0 is the head, pieces 1...count the elements (with their separating commas), the last the tail.
    var pieceCount: Int { count + 2 }

    func piece(_ i: Int) -> [UInt8] {
        switch i {
        case 0: return head
        case pieceCount - 1: return tail
        default: return (i > 1 ? [UInt8(ascii: ",")] : []) + element(i - 1).encoded
        }
    }

    /// All pieces at once, for small bodies.
    var bytes: [UInt8] { (0..<pieceCount).reduce(into: []) { $0 += piece($1) } }

    /// Bodies estimated above this go out one element at a time through the writer, which waits for a
    /// slow client, so that the encoded answer is never held whole; smaller ones get a Content-Length.
    static let incrementalBodyBytes = 256 << 10

    /// A 200 answer with this body.
    func response(estimatedBytes: Int) -> HTTPResponse {
        guard estimatedBytes > Self.incrementalBodyBytes else {
            return HTTPResponse(status: 200, headers: ["Content-Type": "application/json"], body: .bytes(bytes))
        }
        let body = self
        return HTTPResponse(status: 200, headers: ["Content-Type": "application/json"], body: .stream { writer in
            for i in 0..<body.pieceCount { try await writer.write(body.piece(i)) }
        })
    }
}
