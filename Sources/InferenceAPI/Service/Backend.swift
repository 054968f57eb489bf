import Batcher
import Foundation
import GPTNeo
import Tokenizer

// MARK: - What the handlers need from the model side

/// Generation: the real one is the `Batcher`; tests use a deterministic fake. The batcher's own
/// request, event and statistics types cross the layer unchanged.
public protocol CompletionBackend: Sendable {
    /// Throws `BatcherError` at once for overload, context overflow or invalid parameters.
    func submit(_ request: GenerationRequest) throws -> AsyncThrowingStream<GenerationEvent, Error>
    var statistics: BatcherStatistics { get }
    func shutdown(gracePeriod: Duration) async
}

/// Text ↔ ids: the real one is `GPT2Tokenizer`.
public protocol TextTokenizer: Sendable {
    var vocabularySize: Int { get }
    var endOfTextTokenID: Int? { get }
    func encode(_ text: String, allowSpecialTokens: Bool) -> [Int]
    func decode(_ ids: [Int]) -> String
    /// The most bytes one token stands for (special tokens included): a text of n bytes has at least
    /// n / longestTokenBytes tokens, known before it is tokenized.
    var longestTokenBytes: Int { get }
}

extension GPT2Tokenizer: TextTokenizer {
    public var longestTokenBytes: Int {
        (0..<vocabularySize).reduce(1) { longest, id in max(longest, bytes(of: id)?.count ?? 0) }
    }
}

/// The fewest tokens a text can have: a refusal for length can come before the work of tokenizing.
func fewestTokens(_ text: String, longestTokenBytes: Int) -> Int {
    (text.utf8.count + longestTokenBytes - 1) / max(longestTokenBytes, 1)
}

/// What `/v1/models` and the context checks report.
public struct ModelDescription: Sendable {
    /// The id clients send as `model`.
    public var id: String
    /// Prompt + completion tokens the model can attend to (`max_position_embeddings`).
    public var contextLength: Int
    /// Unix time the server loaded it.
    public var created: Int
    /// How the weight matrices are kept in memory (`float32`, `float16`, `bfloat16`, `int8`) and the
    /// bytes of all weights; nil for a backend without a loaded model.
    public var weightFormat: String?
    public var weightBytes: Int?
    public init(id: String, contextLength: Int, created: Int = Int(Date().timeIntervalSince1970),
                weightFormat: String? = nil, weightBytes: Int? = nil) {
        self.id = id; self.contextLength = contextLength; self.created = created
        self.weightFormat = weightFormat; self.weightBytes = weightBytes
    }
}

extension Batcher: CompletionBackend {}
