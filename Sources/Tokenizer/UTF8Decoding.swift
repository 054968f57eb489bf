// MARK: - Bytes back to text

/// UTF-8 to `String`, each maximal ill-formed subsequence replaced by one U+FFFD (the Unicode
/// "best practice" that Python's `bytes.decode(errors="replace")` and Rust's `String::from_utf8_lossy`,
/// used by HF's byte-level decoder, both follow; Swift's repairing initializer does the same).
func decodeUTF8Replacing<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    String(decoding: bytes, as: UTF8.self)
}

/// How many leading bytes of `bytes` can be decoded now without changing the result of decoding the whole
/// stream later: everything except a trailing sequence that is a valid but incomplete character (its
/// lead byte and the continuation bytes so far). A lead byte always starts a new subsequence in the
/// decoder, so cutting just before it cannot change how the bytes before it decode.
func completeUTF8PrefixLength(_ bytes: [UInt8]) -> Int {
    let count = bytes.count
    var leadIndex = count - 1
    let lowest = max(0, count - 3)
    // The last byte that is not a continuation byte (10xxxxxx), within the last three.
    while leadIndex >= lowest, bytes[leadIndex] & 0xC0 == 0x80 { leadIndex -= 1 }
    guard leadIndex >= lowest else { return count }
    let lead = bytes[leadIndex]
    let needed: Int
    switch lead {
    case 0xC2...0xDF: needed = 2
    case 0xE0...0xEF: needed = 3
    case 0xF0...0xF4: needed = 4
    default: return count  // ASCII, or a byte that can never start a character
    }
    let have = count - leadIndex
    if have >= needed { return count }
    if have >= 2 {
        // The second byte's range depends on the lead (no overlongs, no surrogates, nothing above U+10FFFF).
        let second = bytes[leadIndex + 1]
        let valid: ClosedRange<UInt8>
        switch lead {
        case 0xE0: valid = 0xA0...0xBF
        case 0xED: valid = 0x80...0x9F
        case 0xF0: valid = 0x90...0xBF
        case 0xF4: valid = 0x80...0x8F
        default: valid = 0x80...0xBF
        }
        if !valid.contains(second) { return count }
    }
    return leadIndex
}

// MARK: - Incremental decoder

/// Streaming decode: the pieces returned by `append` and `finish` concatenate to `decode(allIDs)`.
///
/// Bytes are held back only while they are the valid beginning of a character that later tokens may
/// complete (an emoji or CJK character split over several tokens); everything else comes out at once.
/// Ids outside the vocabulary add nothing, as in `decode`.
public struct IncrementalDecoder: Sendable {
    private let vocabulary: Vocabulary
    private let skipSpecialTokens: Bool
    private var pending: [UInt8] = []

    init(vocabulary: Vocabulary, skipSpecialTokens: Bool) {
        self.vocabulary = vocabulary
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds one id; returns the text that became complete (possibly empty).
    public mutating func append(_ id: Int) -> String {
        if skipSpecialTokens, vocabulary.specialTokenIDs.contains(id) { return "" }
        guard let bytes = vocabulary.bytes(of: id) else { return "" }
        pending.append(contentsOf: bytes)
        let ready = completeUTF8PrefixLength(pending)
        if ready == 0 { return "" }
        let text = decodeUTF8Replacing(pending[..<ready])
        pending.removeFirst(ready)
        return text
    }

    /// Flushes what is left (incomplete bytes become U+FFFD) and starts over.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return decodeUTF8Replacing(pending)
    }
}
