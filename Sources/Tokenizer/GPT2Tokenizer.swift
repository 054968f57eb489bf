import Foundation

// CONTRACT (written before the implementation): the public surface the batcher, the API and the
// task heads code against. Added since: `load(tokenizerJSON:)`, `load(vocabulary:merges:)`,
// `load(tiktoken:)`, `decode(_:skipSpecialTokens:)`, `isSpecialToken(_:)`,
// `makeIncrementalDecoder(skipSpecialTokens:)`, `TokenWithOffsets.init`, `TokenizerError`.

/// GPT-2 byte-level BPE, identical to Hugging Face's `GPT2TokenizerFast` on any text.
///
/// Pipeline: added/special tokens are split out first (only when allowed), the rest is cut into pieces by
/// GPT-2's pattern (`PreTokenizer`), each piece's UTF-8 bytes are merged by rank (`BytePairEncoder`, with a
/// shared `WordCache`). Immutable after loading, so one instance serves any number of tasks.
public final class GPT2Tokenizer: Sendable {
    let vocabulary: Vocabulary
    let cache: WordCache

    init(vocabulary: Vocabulary, cacheCapacity: Int = 100_000) {
        self.vocabulary = vocabulary
        self.cache = WordCache(capacity: cacheCapacity)
    }

    // MARK: - Loading

    /// Loads `tokenizer.json`, or `vocab.json` + `merges.txt` (with the added tokens of `added_tokens.json`,
    /// `tokenizer_config.json` and `special_tokens_map.json` beside them), or a `*.tiktoken` rank file from a
    /// checkpoint directory (first usable one in that order). Throws `TokenizerError.noUsableTokenizer`
    /// with the reason each candidate failed when none loads.
    public static func load(directory: URL) throws -> GPT2Tokenizer {
        let fileManager = FileManager.default
        func exists(_ name: String) -> Bool { fileManager.fileExists(atPath: directory.appendingPathComponent(name).path) }
        var reasons: [TokenizerError] = []
        func attempt(_ load: () throws -> GPT2Tokenizer) -> GPT2Tokenizer? {
            do {
                return try load()
            } catch let error as TokenizerError {
                reasons.append(error)
            } catch {
                reasons.append(.unreadableFile(path: directory.path, reason: "\(error)"))
            }
            return nil
        }
        if exists("tokenizer.json"),
           let tokenizer = attempt({ try load(tokenizerJSON: directory.appendingPathComponent("tokenizer.json")) }) {
            return tokenizer
        }
        if exists("vocab.json"), exists("merges.txt"),
           let tokenizer = attempt({
               GPT2Tokenizer(vocabulary: try VocabMergesLoader.load(
                   vocabulary: directory.appendingPathComponent("vocab.json"), merges: directory.appendingPathComponent("merges.txt"),
                   addedTokens: try AddedTokenFiles.read(directory: directory)))
           }) {
            return tokenizer
        }
        if exists("vocab.json") != exists("merges.txt") {
            let missing = exists("vocab.json") ? "merges.txt" : "vocab.json"
            reasons.append(.unreadableFile(path: directory.appendingPathComponent(missing).path,
                                           reason: "missing (vocab.json and merges.txt go together)"))
        }
        let names = (try? fileManager.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names.sorted() where name.hasSuffix(".tiktoken") {
            if let tokenizer = attempt({ try load(tiktoken: directory.appendingPathComponent(name)) }) {
                return tokenizer
            }
        }
        throw TokenizerError.noUsableTokenizer(directory: directory.path, reasons: reasons)
    }

    /// Loads HF's `tokenizer.json` (BPE model, byte-level pre-tokenizer and decoder, `added_tokens`).
    public static func load(tokenizerJSON url: URL) throws -> GPT2Tokenizer {
        GPT2Tokenizer(vocabulary: try TokenizerJSONLoader.load(url))
    }

    /// Loads GPT-2's `vocab.json` + `merges.txt`.
    public static func load(vocabulary: URL, merges: URL) throws -> GPT2Tokenizer {
        GPT2Tokenizer(vocabulary: try VocabMergesLoader.load(vocabulary: vocabulary, merges: merges))
    }

    /// Loads a tiktoken rank file (`base64 rank` per line); `<|endoftext|>` follows the last rank.
    public static func load(tiktoken url: URL) throws -> GPT2Tokenizer {
        GPT2Tokenizer(vocabulary: try TiktokenLoader.load(url))
    }

    // MARK: - Vocabulary

    /// Number of ids, including added/special tokens (50257 for GPT-2).
    public var vocabularySize: Int { vocabulary.tokenBytes.count }

    /// Id of `<|endoftext|>` when the vocabulary has it.
    public var endOfTextTokenID: Int? { vocabulary.endOfTextTokenID }

    /// The raw bytes a token stands for, or nil for an id outside the vocabulary.
    public func bytes(of id: Int) -> [UInt8]? { vocabulary.bytes(of: id).map(Array.init) }

    // MARK: - Encoding

    /// Text to ids. Special tokens in `text` are recognised only when `allowSpecialTokens` is true;
    /// otherwise they are encoded as plain text.
    public func encode(_ text: String, allowSpecialTokens: Bool = false) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3)
        encode(text, allowSpecialTokens: allowSpecialTokens, withOffsets: false) { id, _, _ in ids.append(id) }
        return ids
    }

    /// Ids with each token's character range in `text`, counted in Unicode scalars (as Python's
    /// `str` indices, which is what HF's `offset_mapping` reports). As in HF, a token covers every
    /// character one of its bytes belongs to: the tokens holding parts of one emoji all report that
    /// emoji's range, and a token's leading space is part of its range (GPT-2's post-processor does not
    /// trim offsets; a `tokenizer.json` whose ByteLevel post-processor says `trim_offsets: true` gets HF's
    /// trimming).
    public func encodeWithOffsets(_ text: String, allowSpecialTokens: Bool = false) -> [TokenWithOffsets] {
        var tokens: [TokenWithOffsets] = []
        encode(text, allowSpecialTokens: allowSpecialTokens, withOffsets: true) { id, start, end in
            tokens.append(TokenWithOffsets(id: id, start: start, end: end))
        }
        return tokens
    }

    private func encode(
        _ text: String, allowSpecialTokens: Bool, withOffsets: Bool, emit: (Int, Int, Int) -> Void
    ) {
        let scalars = Array(text.unicodeScalars)
        let classes = scalars.map(CharacterClass.init)
        var pieceBytes: [UInt8] = []
        var scalarOfByte: [Int] = []  // for offsets: the scalar index each byte of the piece came from
        let trimming = withOffsets ? vocabulary.offsetTrimming : nil
        var emitted = 0
        scalars.withUnsafeBufferPointer { scalars in
            classes.withUnsafeBufferPointer { classes in
                /// Emits one token, trimming its offsets first when the post-processor asks for it.
                func output(_ id: Int32, _ start: Int, _ end: Int, isAddedToken: Bool) {
                    if let trimming {
                        let (trimmedStart, trimmedEnd) = trimmedOffsets(
                            start, end, in: scalars, isFirst: emitted == 0, isAddedToken: isAddedToken, trimming)
                        emit(Int(id), trimmedStart, trimmedEnd)
                    } else {
                        emit(Int(id), start, end)
                    }
                    emitted += 1
                }
                for segment in vocabulary.segments(of: scalars, allowSpecial: allowSpecialTokens) {
                    switch segment {
                    case let .token(id, range):
                        output(id, range.lowerBound, range.upperBound, isAddedToken: true)
                    case let .text(range):
                        PreTokenizer.forEachPiece(scalars: scalars, classes: classes, range: range) { start, end in
                            pieceBytes.removeAll(keepingCapacity: true)
                            if withOffsets { scalarOfByte.removeAll(keepingCapacity: true) }
                            for index in start..<end {
                                appendUTF8(scalars[index], to: &pieceBytes)
                                if withOffsets {
                                    while scalarOfByte.count < pieceBytes.count { scalarOfByte.append(index) }
                                }
                            }
                            let ids = tokenIDs(ofPiece: pieceBytes)
                            guard withOffsets else {
                                for id in ids { emit(Int(id), 0, 0) }
                                return
                            }
                            var byteIndex = 0
                            for id in ids {
                                let length = Int(vocabulary.modelTokenLengths[Int(id)])
                                output(id, scalarOfByte[byteIndex], scalarOfByte[byteIndex + length - 1] + 1, isAddedToken: false)
                                byteIndex += length
                            }
                        }
                    }
                }
            }
        }
    }

    /// HF's `process_offsets` of the ByteLevel post-processor: count the spaces that begin and end the
    /// token's string and move its offsets inward by that many characters, never past each other. In a
    /// BPE token only `Ġ` (a U+0020 of the text) counts, the one whitespace among byte-level characters;
    /// an added token's string is the text it matched, whitespace absorbed by lstrip/rstrip included.
    /// The first token keeps a single leading space when `add_prefix_space` (it may be the added one).
    private func trimmedOffsets(
        _ start: Int, _ end: Int, in scalars: UnsafeBufferPointer<Unicode.Scalar>, isFirst: Bool, isAddedToken: Bool,
        _ trimming: OffsetTrimming
    ) -> (Int, Int) {
        let isSpace: (Unicode.Scalar) -> Bool = isAddedToken ? { $0.properties.isWhitespace } : { $0 == " " }
        var leading = 0
        while start + leading < end, isSpace(scalars[start + leading]) { leading += 1 }
        var trailing = 0
        while end - trailing > start, isSpace(scalars[end - 1 - trailing]) { trailing += 1 }
        var newStart = start
        var newEnd = end
        if leading > 0 {
            if (isFirst || start == 0) && trimming.addPrefixSpace && leading == 1 { leading = 0 }
            newStart = min(start + leading, end)
        }
        if trailing > 0, newEnd >= trailing {
            newEnd = max(newEnd - trailing, newStart)
        }
        return (newStart, newEnd)
    }

    /// BPE of one piece, through the cache.
    private func tokenIDs(ofPiece bytes: [UInt8]) -> [Int32] {
        if bytes.count == 1 { return [vocabulary.byteTokenIDs[Int(bytes[0])]] }
        if let whole = vocabulary.wholePieceIDs?[bytes] { return [whole] }
        let cacheable = bytes.count <= WordCache.maximumPieceLength
        if cacheable, let cached = cache.lookup(bytes) { return cached }
        let ids = vocabulary.encoder.encode(bytes.map { vocabulary.byteTokenIDs[Int($0)] })
        if cacheable { cache.insert(bytes, ids) }
        return ids
    }

    // MARK: - Decoding

    /// Ids to text; byte sequences that are not valid UTF-8 become U+FFFD as HF does. Ids outside the
    /// vocabulary are skipped, as HF's decoder skips ids it has no token for (validate ids first where
    /// that matters; `bytes(of:)` returns nil for them).
    public func decode(_ ids: [Int]) -> String {
        decode(ids, skipSpecialTokens: false)
    }

    /// `decode`, leaving out special tokens when `skipSpecialTokens` (HF's `skip_special_tokens`, which
    /// its text-generation pipeline turns on by default).
    public func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String {
        var bytes: [UInt8] = []
        for id in ids where !(skipSpecialTokens && vocabulary.specialTokenIDs.contains(id)) {
            if let tokenBytes = vocabulary.bytes(of: id) { bytes.append(contentsOf: tokenBytes) }
        }
        return decodeUTF8Replacing(bytes)
    }

    /// Whether `id` is a special token (`<|endoftext|>`, or an added token marked special).
    public func isSpecialToken(_ id: Int) -> Bool {
        vocabulary.specialTokenIDs.contains(id)
    }

    /// A decoder for streaming: text comes out only once its bytes form complete characters.
    public func makeIncrementalDecoder() -> IncrementalDecoder {
        IncrementalDecoder(vocabulary: vocabulary, skipSpecialTokens: false)
    }

    /// A streaming decoder that leaves out special tokens when `skipSpecialTokens`; its pieces concatenate
    /// to `decode(ids, skipSpecialTokens:)`.
    public func makeIncrementalDecoder(skipSpecialTokens: Bool) -> IncrementalDecoder {
        IncrementalDecoder(vocabulary: vocabulary, skipSpecialTokens: skipSpecialTokens)
    }
}

/// One token of `encodeWithOffsets`.
public struct TokenWithOffsets: Sendable, Equatable {
    public var id: Int
    /// Start and end in Unicode scalars of the encoded text (end exclusive).
    public var start: Int
    public var end: Int

    public init(id: Int, start: Int, end: Int) {
        self.id = id
        self.start = start
        self.end = end
    }
}

// MARK: - UTF-8

@inline(__always)
func appendUTF8(_ scalar: Unicode.Scalar, to bytes: inout [UInt8]) {
    let value = scalar.value
    switch value {
    case 0..<0x80:
        bytes.append(UInt8(value))
    case 0x80..<0x800:
        bytes.append(UInt8(0xC0 | (value >> 6)))
        bytes.append(UInt8(0x80 | (value & 0x3F)))
    case 0x800..<0x10000:
        bytes.append(UInt8(0xE0 | (value >> 12)))
        bytes.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
        bytes.append(UInt8(0x80 | (value & 0x3F)))
    default:
        bytes.append(UInt8(0xF0 | (value >> 18)))
        bytes.append(UInt8(0x80 | ((value >> 12) & 0x3F)))
        bytes.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
        bytes.append(UInt8(0x80 | (value & 0x3F)))
    }
}
