import Foundation

// CONTRACT (written before the implementation): the public surface the batcher, the API and the
// task heads code against. The tokenizer's implementer may add to it; changing it needs a note.

/// GPT-2 byte-level BPE, identical to Hugging Face's `GPT2TokenizerFast` on any text.
public final class GPT2Tokenizer: Sendable {
    /// Loads `tokenizer.json`, or `vocab.json` + `merges.txt`, or a `*.tiktoken` rank file from a
    /// checkpoint directory (first usable one in that order).
    public static func load(directory: URL) throws -> GPT2Tokenizer { fatalError("not implemented") }

    /// Number of ids, including added/special tokens (50257 for GPT-2).
    public var vocabularySize: Int { fatalError("not implemented") }

    /// Id of `<|endoftext|>` when the vocabulary has it.
    public var endOfTextTokenID: Int? { fatalError("not implemented") }

    /// Text to ids. Special tokens in `text` are recognised only when `allowSpecialTokens` is true;
    /// otherwise they are encoded as plain text.
    public func encode(_ text: String, allowSpecialTokens: Bool = false) -> [Int] { fatalError("not implemented") }

    /// Ids with each token's character range in `text`, counted in Unicode scalars (as Python's
    /// `str` indices, which is what HF's `offset_mapping` reports).
    public func encodeWithOffsets(_ text: String, allowSpecialTokens: Bool = false) -> [TokenWithOffsets] { fatalError("not implemented") }

    /// Ids to text; byte sequences that are not valid UTF-8 become U+FFFD as HF does.
    public func decode(_ ids: [Int]) -> String { fatalError("not implemented") }

    /// The raw bytes a token stands for, or nil for an id outside the vocabulary.
    public func bytes(of id: Int) -> [UInt8]? { fatalError("not implemented") }

    /// A decoder for streaming: text comes out only once its bytes form complete characters.
    public func makeIncrementalDecoder() -> IncrementalDecoder { fatalError("not implemented") }
}

public struct TokenWithOffsets: Sendable, Equatable {
    public var id: Int
    /// Start and end in Unicode scalars of the encoded text (end exclusive).
    public var start: Int
    public var end: Int
}

/// Streaming decode: the pieces returned by `append` and `finish` concatenate to `decode(allIDs)`.
public struct IncrementalDecoder: Sendable {
    /// Adds one id; returns the text that became complete (possibly empty).
    public mutating func append(_ id: Int) -> String { fatalError("not implemented") }
    /// Flushes what is left (incomplete bytes become U+FFFD).
    public mutating func finish() -> String { fatalError("not implemented") }
}
