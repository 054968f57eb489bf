// MARK: - The loaded model: tokens, merges, added tokens

/// A token matched in the text before pre-tokenization (`<|endoftext|>`, `added_tokens` of tokenizer.json).
struct AddedToken: Sendable {
    let content: String
    let id: Int32
    /// Special tokens are recognised only when the caller allows it; the others always, as in HF.
    let special: Bool
    /// Absorb the whitespace on the left / right of the match, as HF's `lstrip` / `rstrip`.
    let leftStrip: Bool
    let rightStrip: Bool
    /// Match only where no word character touches the token (HF's `single_word`).
    let singleWord: Bool
    /// HF matches `normalized` tokens in a second pass, in the text the others left.
    let normalized: Bool

    /// The content as scalars, what matching compares.
    let scalars: [Unicode.Scalar]

    init(
        content: String, id: Int32, special: Bool, leftStrip: Bool = false, rightStrip: Bool = false,
        singleWord: Bool = false, normalized: Bool = false
    ) {
        self.content = content
        self.id = id
        self.special = special
        self.leftStrip = leftStrip
        self.rightStrip = rightStrip
        self.singleWord = singleWord
        self.normalized = normalized
        self.scalars = Array(content.unicodeScalars)
    }
}

/// HF's ByteLevel post-processor with `trim_offsets`: offsets exclude a token's leading and trailing
/// spaces, except the single leading space of the first token when `add_prefix_space` (it could have been
/// the one the pre-tokenizer adds).
struct OffsetTrimming: Sendable {
    var addPrefixSpace: Bool
}

/// Everything a loader produces, shared read-only by the tokenizer and its incremental decoders.
final class Vocabulary: Sendable {
    /// Far above any BPE vocabulary in use (GPT-2: 50,257; the largest tiktoken files: ~200,000).
    static let maximumVocabularySize = 4_000_000

    /// The bytes each id stands for.
    let tokenBytes: TokenByteTable
    /// Byte length of each model (BPE) token by id, for offsets. Kept apart from `tokenBytes`: an added
    /// token may reuse a model id with other content, which must not change how BPE output is measured.
    let modelTokenLengths: [Int32]
    /// Id of each single-byte token: a dense 256-entry array indexed by the byte.
    let byteTokenIDs: [Int32]
    let encoder: BytePairEncoder
    let addedTokens: [AddedToken]
    /// Whole pieces that are tokens, looked up before BPE when the model says `ignore_merges`.
    let wholePieceIDs: [[UInt8]: Int32]?
    let endOfTextTokenID: Int?
    let offsetTrimming: OffsetTrimming?
    /// Ids of the special added tokens (what HF's `skip_special_tokens` leaves out).
    let specialTokenIDs: Set<Int>

    /// - Parameters:
    ///   - path: the file the data came from, for error messages.
    ///   - idOfBytes: each token's bytes -> id.
    ///   - merges: `(left, right)` token ids of each merge, in rank order, with the merged id.
    init(
        path: String,
        idOfBytes: [[UInt8]: Int32],
        merges: [BytePair: Merge],
        addedTokens: [AddedToken],
        ignoreMerges: Bool = false,
        offsetTrimming: OffsetTrimming? = nil
    ) throws {
        self.offsetTrimming = offsetTrimming
        self.specialTokenIDs = Set(addedTokens.filter(\.special).map { Int($0.id) })
        var maximumID: Int32 = -1
        for id in idOfBytes.values { maximumID = max(maximumID, id) }
        for token in addedTokens { maximumID = max(maximumID, token.id) }
        // The id table is dense, so a stray huge id in a file must not allocate gigabytes.
        guard Int(maximumID) < Self.maximumVocabularySize else {
            throw TokenizerError.invalidTokenID(path: path, reason: "id \(maximumID) exceeds \(Self.maximumVocabularySize - 1)")
        }
        var tokenBytes = [[UInt8]?](repeating: nil, count: Int(maximumID) + 1)
        for (bytes, id) in idOfBytes {
            guard id >= 0 else { throw TokenizerError.invalidTokenID(path: path, reason: "negative id \(id)") }
            if let existing = tokenBytes[Int(id)], existing != bytes {
                throw TokenizerError.invalidTokenID(path: path, reason: "id \(id) is given to two tokens")
            }
            tokenBytes[Int(id)] = bytes
        }
        for token in addedTokens {
            guard token.id >= 0 else {
                throw TokenizerError.invalidTokenID(path: path, reason: "negative id \(token.id)")
            }
            // What HF's decoder makes of the token's content (see `bytes(ofVocabularyString:)`).
            tokenBytes[Int(token.id)] = ByteLevelTable.bytes(ofVocabularyString: token.content)
        }
        var byteTokenIDs = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            guard let id = idOfBytes[[UInt8(byte)]] else {
                throw TokenizerError.missingByteToken(path: path, byte: UInt8(byte))
            }
            byteTokenIDs[byte] = id
        }
        var modelTokenLengths = [Int32](repeating: 0, count: tokenBytes.count)
        for (bytes, id) in idOfBytes { modelTokenLengths[Int(id)] = Int32(bytes.count) }
        self.modelTokenLengths = modelTokenLengths
        self.tokenBytes = TokenByteTable(tokenBytes)
        self.byteTokenIDs = byteTokenIDs
        self.encoder = BytePairEncoder(merges: merges)
        // Longest first, so that when two added tokens match at one place the longer wins (HF matches
        // leftmost-longest).
        self.addedTokens = addedTokens.sorted { $0.scalars.count > $1.scalars.count }
        self.wholePieceIDs = ignoreMerges ? idOfBytes : nil
        let endOfText = "<|endoftext|>"
        if let token = addedTokens.first(where: { $0.content == endOfText }) {
            endOfTextTokenID = Int(token.id)
        } else {
            endOfTextTokenID = idOfBytes[Array(endOfText.utf8)].map(Int.init)
        }
    }

    /// The merge table for `merges.txt`-style pairs of token strings, in rank order.
    static func mergeTable(
        path: String,
        pairs: [(left: String, right: String, line: Int)],
        idOfBytes: [[UInt8]: Int32]
    ) throws -> [BytePair: Merge] {
        var table: [BytePair: Merge] = [:]
        table.reserveCapacity(pairs.count)
        for (rank, pair) in pairs.enumerated() {
            let left = ByteLevelTable.bytes(ofVocabularyString: pair.left)
            let right = ByteLevelTable.bytes(ofVocabularyString: pair.right)
            guard let leftID = idOfBytes[left] else {
                throw TokenizerError.malformedMerge(path: path, line: pair.line, reason: "'\(pair.left)' is not in the vocabulary")
            }
            guard let rightID = idOfBytes[right] else {
                throw TokenizerError.malformedMerge(path: path, line: pair.line, reason: "'\(pair.right)' is not in the vocabulary")
            }
            guard let resultID = idOfBytes[left + right] else {
                throw TokenizerError.malformedMerge(
                    path: path, line: pair.line, reason: "'\(pair.left)\(pair.right)' is not in the vocabulary")
            }
            let key = BytePair(left: leftID, right: rightID)
            // A repeated pair keeps its first (lowest) rank.
            if table[key] == nil { table[key] = Merge(rank: Int32(rank), result: resultID) }
        }
        return table
    }

    /// The bytes of `id`, or nil for an id outside the vocabulary.
    @inline(__always)
    func bytes(of id: Int) -> ArraySlice<UInt8>? { tokenBytes.bytes(of: id) }
}

// MARK: - Token bytes

/// Every token's bytes in one buffer, with each id's offsets: 0.6 MB for GPT-2's 50,257 tokens, where an
/// array per token (a heap object of 32 bytes of header and allocator rounding for 6 bytes on average)
/// took 2.8 MB that stay resident for the life of the server.
struct TokenByteTable: Sendable {
    private let storage: [UInt8]
    /// The bytes of id i are storage[offsets[i]..<offsets[i + 1]].
    private let offsets: [Int]
    /// False for ids the files leave unused.
    private let known: [Bool]

    init(_ tokens: [[UInt8]?]) {
        var storage: [UInt8] = []
        storage.reserveCapacity(tokens.reduce(0) { $0 + ($1?.count ?? 0) })
        var offsets = [0]
        offsets.reserveCapacity(tokens.count + 1)
        for token in tokens {
            if let token { storage += token }
            offsets.append(storage.count)
        }
        self.storage = storage
        self.offsets = offsets
        known = tokens.map { $0 != nil }
    }

    /// Number of ids, used or not.
    var count: Int { known.count }

    /// The bytes of `id`; nil outside the table and for unused ids.
    @inline(__always)
    func bytes(of id: Int) -> ArraySlice<UInt8>? {
        guard id >= 0, id < known.count, known[id] else { return nil }
        return storage[offsets[id]..<offsets[id + 1]]
    }
}
