import Foundation

// MARK: - vocab.json + merges.txt read byte by byte

/// Reads the common form of `vocab.json` + `merges.txt` straight from their bytes. The general path
/// (JSONDecoder into `[String: Int]`, a String per merge line, an array-keyed dictionary lookup per token)
/// made loading GPT-2's files take 250-330 ms of every server start; through this one it takes 45-90 ms,
/// most of it building the tables `Vocabulary` keeps (TokenizerBenchmark).
///
/// It accepts only what it can read with exactly the general path's result, and answers nil for anything
/// else (an escape of U+0300 or above, a duplicate key or two keys for the same bytes, a number that is not a plain non-negative integer, a token
/// spelled with scalars from U+0300 up, a malformed merge line, a merge of tokens not in the vocabulary):
/// the caller then takes the general path, which gives the same answer or the same error as before.
/// The U+0300 bound is what makes byte keys safe: `[String: Int]` compares keys by canonical equivalence,
/// and below the combining marks (U+0300...) two different scalar sequences are never equivalent.
enum VocabMergesScanner {
    static func scan(vocabulary: Data, merges: Data) -> VocabMergesTables? {
        var table = ByteStringTable(expectedCount: 65_536)
        var endOfTextID: Int32?
        let vocabularyRead: Bool = vocabulary.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            return scanVocabulary(bytes, into: &table, endOfTextID: &endOfTextID)
        }
        guard vocabularyRead else { return nil }
        let mergeTable: [BytePair: Merge]? = merges.withUnsafeBytes { raw in
            scanMerges(raw.bindMemory(to: UInt8.self), table: table)
        }
        guard let mergeTable else { return nil }
        return VocabMergesTables(idOfBytes: table.dictionary(), merges: mergeTable, endOfTextID: endOfTextID)
    }

    // MARK: vocab.json

    /// A flat JSON object of strings to non-negative integers, each key converted to its token's bytes as
    /// `ByteLevelTable.bytes(ofVocabularyString:)` does, entered into `table`; false for anything else, and
    /// for bytes that two keys give.
    private static func scanVocabulary(
        _ json: UnsafeBufferPointer<UInt8>, into table: inout ByteStringTable, endOfTextID: inout Int32?
    ) -> Bool {
        var position = 0
        let end = json.count
        func skipWhitespace() {
            while position < end {
                switch json[position] {
                case 0x20, 0x09, 0x0A, 0x0D: position += 1
                default: return
                }
            }
        }
        var scalars: [UInt32] = []
        scalars.reserveCapacity(64)
        var tokenBytes: [UInt8] = []
        tokenBytes.reserveCapacity(256)
        let endOfText = "<|endoftext|>".utf8.map { UInt32($0) }

        skipWhitespace()
        guard position < end, json[position] == UInt8(ascii: "{") else { return false }
        position += 1
        skipWhitespace()
        if position < end, json[position] == UInt8(ascii: "}") {
            position += 1
            skipWhitespace()
            return position == end
        }
        while true {
            guard position < end, json[position] == UInt8(ascii: "\"") else { return false }
            position += 1
            guard scanString(json, from: &position, scalars: &scalars) else { return false }
            skipWhitespace()
            guard position < end, json[position] == UInt8(ascii: ":") else { return false }
            position += 1
            skipWhitespace()
            guard let id = scanIdentifier(json, from: &position) else { return false }

            if scalars == endOfText { endOfTextID = id }
            if !bytesThroughTable(scalars, into: &tokenBytes) { encodeUTF8(scalars, into: &tokenBytes) }
            // Bytes met twice: a key given twice, or two spellings of the same bytes (U+0100 and an escaped
            // NUL both stand for byte 0). Neither occurs in real vocabularies; the general path decides.
            guard table.insert(tokenBytes, id: id) == nil else { return false }

            skipWhitespace()
            guard position < end else { return false }
            if json[position] == UInt8(ascii: ",") {
                position += 1
                skipWhitespace()
                continue
            }
            guard json[position] == UInt8(ascii: "}") else { return false }
            position += 1
            skipWhitespace()
            return position == end
        }
    }

    /// The string from `position` (after its opening quote) to its closing quote, as scalars below U+0300.
    private static func scanString(_ json: UnsafeBufferPointer<UInt8>, from position: inout Int, scalars: inout [UInt32]) -> Bool {
        scalars.removeAll(keepingCapacity: true)
        let end = json.count
        while position < end {
            let byte = json[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                return true
            case UInt8(ascii: "\\"):
                guard position + 1 < end else { return false }
                let escape = json[position + 1]
                position += 2
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scalars.append(UInt32(escape))
                case UInt8(ascii: "b"): scalars.append(0x08)
                case UInt8(ascii: "f"): scalars.append(0x0C)
                case UInt8(ascii: "n"): scalars.append(0x0A)
                case UInt8(ascii: "r"): scalars.append(0x0D)
                case UInt8(ascii: "t"): scalars.append(0x09)
                case UInt8(ascii: "u"):
                    guard position + 4 <= end else { return false }
                    var value: UInt32 = 0
                    for offset in 0..<4 {
                        guard let digit = hexDigit(json[position + offset]) else { return false }
                        value = value << 4 | digit
                    }
                    position += 4
                    // Surrogates and everything from the combining marks up: the general path.
                    guard value < 0x300 else { return false }
                    scalars.append(value)
                default: return false
                }
            case 0x00..<0x20:
                return false  // a control character must be escaped
            case 0x20..<0x80:
                scalars.append(UInt32(byte))
                position += 1
            case 0xC2...0xCB:
                // Two-byte sequences up to U+02FF; longer ones (and U+0300 up) go to the general path.
                guard position + 1 < end, json[position + 1] & 0xC0 == 0x80 else { return false }
                scalars.append(UInt32(byte & 0x1F) << 6 | UInt32(json[position + 1] & 0x3F))
                position += 2
            default:
                return false
            }
        }
        return false
    }

    /// A non-negative integer below Int32.max with no sign, fraction or exponent, as JSON writes it.
    private static func scanIdentifier(_ json: UnsafeBufferPointer<UInt8>, from position: inout Int) -> Int32? {
        let start = position
        var value = 0
        while position < json.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(json[position]) {
            value = value * 10 + Int(json[position] - UInt8(ascii: "0"))
            position += 1
            guard position - start <= 10 else { return nil }
        }
        let digits = position - start
        guard digits > 0, digits == 1 || json[start] != UInt8(ascii: "0"), value < Int(Int32.max) else { return nil }
        if position < json.count, json[position] == UInt8(ascii: ".") || json[position] | 0x20 == UInt8(ascii: "e") { return nil }
        return Int32(value)
    }

    private static func hexDigit(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// The bytes the scalars spell through GPT-2's byte table, as `ByteLevelTable.bytes(ofVocabularyString:)`
    /// reads a spelling whose every scalar is in it; false if one is not (the spelling then stands for its
    /// own UTF-8).
    private static func bytesThroughTable(_ scalars: [UInt32], into bytes: inout [UInt8]) -> Bool {
        bytes.removeAll(keepingCapacity: true)
        for scalar in scalars {
            let value = Int(scalar)
            guard value < ByteLevelTable.byteOfCharacter.count, ByteLevelTable.byteOfCharacter[value] >= 0 else { return false }
            bytes.append(UInt8(ByteLevelTable.byteOfCharacter[value]))
        }
        return true
    }

    private static func encodeUTF8(_ scalars: [UInt32], into bytes: inout [UInt8]) {
        bytes.removeAll(keepingCapacity: true)
        for scalar in scalars {
            if scalar < 0x80 {
                bytes.append(UInt8(scalar))
            } else {
                bytes.append(0xC0 | UInt8(scalar >> 6))
                bytes.append(0x80 | UInt8(scalar & 0x3F))
            }
        }
    }

    // MARK: merges.txt

    /// `left right` per line in rank order (an optional `#version` first line, empty lines skipped, CRLF
    /// accepted, a leading byte order mark dropped), as `VocabMergesLoader.parseMerges` and
    /// `Vocabulary.mergeTable` read them; nil where either would throw, or for a token it cannot convert.
    private static func scanMerges(_ text: UnsafeBufferPointer<UInt8>, table: ByteStringTable) -> [BytePair: Merge]? {
        var merges: [BytePair: Merge] = [:]
        merges.reserveCapacity(table.count)
        var position = 0
        let end = text.count
        if end >= 3, text[0] == 0xEF, text[1] == 0xBB, text[2] == 0xBF { position = 3 }
        var lineNumber = 0
        var rank: Int32 = 0
        var left: [UInt8] = [], right: [UInt8] = [], joined: [UInt8] = [], scalars: [UInt32] = []
        let version = Array("#version".utf8)
        while position <= end {
            var lineEnd = position
            while lineEnd < end, text[lineEnd] != 0x0A { lineEnd += 1 }
            let next = lineEnd + 1
            lineNumber += 1
            if lineEnd > position, text[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            defer { position = next }
            let line = UnsafeBufferPointer(rebasing: text[position..<lineEnd])
            if line.isEmpty { continue }
            if lineNumber == 1, line.starts(with: version) {
                // The general path tests the prefix by Characters, after checking the whole file is UTF-8.
                guard line.allSatisfy({ $0 < 0x80 }) else { return nil }
                continue
            }
            guard let space = line.firstIndex(of: 0x20), space > 0, space < line.count - 1,
                  !line[(space + 1)...].contains(0x20) else { return nil }
            guard tokenBytes(UnsafeBufferPointer(rebasing: line[..<space]), into: &left, scalars: &scalars),
                  tokenBytes(UnsafeBufferPointer(rebasing: line[(space + 1)...]), into: &right, scalars: &scalars),
                  let leftID = table.lookup(left), let rightID = table.lookup(right) else { return nil }
            joined.removeAll(keepingCapacity: true)
            joined += left
            joined += right
            guard let resultID = table.lookup(joined) else { return nil }
            let key = BytePair(left: leftID, right: rightID)
            if merges[key] == nil { merges[key] = Merge(rank: rank, result: resultID) }
            rank += 1
        }
        return merges
    }

    /// A merge line's token spelling (UTF-8) -> its bytes, as `ByteLevelTable.bytes(ofVocabularyString:)`:
    /// through the table when every scalar is a byte's spelling, else the spelling's own UTF-8. Only one-
    /// and two-byte sequences are read here; `scalars` is scratch space.
    private static func tokenBytes(_ spelling: UnsafeBufferPointer<UInt8>, into bytes: inout [UInt8], scalars: inout [UInt32]) -> Bool {
        scalars.removeAll(keepingCapacity: true)
        var index = 0
        while index < spelling.count {
            let byte = spelling[index]
            if byte < 0x80 {
                scalars.append(UInt32(byte))
                index += 1
            } else if (0xC2...0xDF).contains(byte), index + 1 < spelling.count, spelling[index + 1] & 0xC0 == 0x80 {
                scalars.append(UInt32(byte & 0x1F) << 6 | UInt32(spelling[index + 1] & 0x3F))
                index += 2
            } else {
                return false
            }
        }
        if !bytesThroughTable(scalars, into: &bytes) { bytes = Array(spelling) }
        return true
    }
}

// MARK: - Byte strings -> ids

/// An open-addressing hash table from byte strings to ids, the strings kept in one buffer: no array, and
/// no allocation, per key.
struct ByteStringTable {
    private var storage: [UInt8] = []
    /// Per entry: where its bytes start in `storage`, how many, its id.
    private var starts: [Int] = []
    private var lengths: [Int] = []
    private var ids: [Int32] = []
    /// Entry index + 1 per slot, 0 for an empty slot; a power of two at most half full.
    private var slots: [Int32]

    init(expectedCount: Int) {
        var capacity = 16
        while capacity < expectedCount * 2 { capacity <<= 1 }
        slots = [Int32](repeating: 0, count: capacity)
        starts.reserveCapacity(expectedCount)
        lengths.reserveCapacity(expectedCount)
        ids.reserveCapacity(expectedCount)
        storage.reserveCapacity(expectedCount * 8)
    }

    var count: Int { ids.count }

    /// FNV-1a: keys are a few bytes long, so a simple byte-at-a-time hash is enough.
    private static func hash(_ key: [UInt8]) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: hash ^ (hash >> 29))
    }

    /// The slot holding `key`, or the empty slot where it would go.
    private func slot(of key: [UInt8]) -> (slot: Int, entry: Int?) {
        let mask = slots.count - 1
        var slot = Self.hash(key) & mask
        while true {
            let stored = Int(slots[slot])
            if stored == 0 { return (slot, nil) }
            let entry = stored - 1
            if lengths[entry] == key.count, key.isEmpty || storage.withUnsafeBufferPointer({ stored in
                key.withUnsafeBufferPointer { memcmp(stored.baseAddress! + starts[entry], $0.baseAddress!, key.count) == 0 }
            }) {
                return (slot, entry)
            }
            slot = (slot + 1) & mask
        }
    }

    /// Adds `key` with `id`, unless present: then returns the id it has.
    mutating func insert(_ key: [UInt8], id: Int32) -> Int32? {
        let (slot, entry) = slot(of: key)
        if let entry { return ids[entry] }
        if (ids.count + 1) * 2 > slots.count { grow(); return insert(key, id: id) }
        starts.append(storage.count)
        lengths.append(key.count)
        ids.append(id)
        storage += key
        slots[slot] = Int32(ids.count)
        return nil
    }

    func lookup(_ key: [UInt8]) -> Int32? {
        slot(of: key).entry.map { ids[$0] }
    }

    private mutating func grow() {
        slots = [Int32](repeating: 0, count: slots.count * 2)
        let mask = slots.count - 1
        for entry in ids.indices {
            var slot = Self.hash(Array(storage[starts[entry]..<(starts[entry] + lengths[entry])])) & mask
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(entry + 1)
        }
    }

    /// The same mapping as a dictionary, what `Vocabulary` takes.
    func dictionary() -> [[UInt8]: Int32] {
        var result: [[UInt8]: Int32] = [:]
        result.reserveCapacity(ids.count)
        for entry in ids.indices {
            result[Array(storage[starts[entry]..<(starts[entry] + lengths[entry])])] = ids[entry]
        }
        return result
    }
}
