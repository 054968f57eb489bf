import Batcher
import Foundation
import GPTNeo
import Tokenizer

// What the task endpoints (/v1/classify, /v1/classify-tokens, /v1/answer, /v1/embeddings) need: hidden
// states from the shared body through the batcher (prefill-only work that batches with generation), the
// heads, a tokenizer with offsets, and the embedding pooling rule.

// MARK: - Backends

/// Final hidden states (after `ln_f`) of every position, rows × hiddenSize. The real one is the `Batcher`.
public protocol HiddenStateEncoder: Sendable {
    func encode(tokens: [Int]) async throws -> [Float]
}

extension Batcher: HiddenStateEncoder {}

/// The tokenizer as the tasks use it: ids with character offsets (as HF's offset_mapping) and raw bytes.
public protocol TaskTokenizer: Sendable {
    var vocabularySize: Int { get }
    /// `<|endoftext|>`, which GPT-2 uses as `unk_token` too (the token-classification pipeline reports it by its text).
    var endOfTextTokenID: Int? { get }
    /// Text to tokens with offsets; special tokens in the text are recognised, as HF's tokenizer call does.
    func taskTokens(_ text: String) -> [TokenSpan]
    func taskTokenBytes(_ id: Int) -> [UInt8]
    /// As `TextTokenizer.longestTokenBytes`.
    var longestTokenBytes: Int { get }
}

extension GPT2Tokenizer: TaskTokenizer {
    public func taskTokens(_ text: String) -> [TokenSpan] {
        encodeWithOffsets(text, allowSpecialTokens: true).map(TokenSpan.init)
    }
    public func taskTokenBytes(_ id: Int) -> [UInt8] { bytes(of: id) ?? [] }
}

// MARK: - Configuration

/// The server's task settings: extra head files and the embedding pooling.
public struct TaskOptions: Sendable, Equatable {
    /// A JSON file naming extra head files (see GPTNeo/HeadsLoading.swift); nil: only the checkpoint's heads.
    public var headsConfiguration: URL?
    public var embeddings: EmbeddingConfiguration
    public var limits: TaskLimits
    public init(headsConfiguration: URL? = nil, embeddings: EmbeddingConfiguration = .init(), limits: TaskLimits = .init()) {
        self.headsConfiguration = headsConfiguration; self.embeddings = embeddings; self.limits = limits
    }
}

/// How `/v1/embeddings` turns token states into one vector.
public struct EmbeddingConfiguration: Sendable, Equatable {
    public var pooling: EmbeddingPooling = .mean
    /// L2-normalise each vector (what sentence-embedding models usually expect).
    public var normalize = false
    public init(pooling: EmbeddingPooling = .mean, normalize: Bool = false) {
        self.pooling = pooling; self.normalize = normalize
    }
}

/// Bounds on one task request.
public struct TaskLimits: Sendable, Equatable {
    /// Inputs in one request (`input` array, questions).
    public var maxInputs = 256
    /// Forward passes one /v1/answer request may need (its contexts' windows together): a long context with
    /// a small `max_seq_len` and a large `doc_stride` could otherwise ask for thousands.
    public var maxWindows = 1024
    /// Largest answer, estimated before the forward passes (the completions' limit, `max_response_bytes`).
    public var maxResponseBytes = 8 << 20
    public init() {}
}

/// Everything the task endpoints see of the loaded model.
public struct TaskServingContext: Sendable {
    public var modelID: String
    public var heads: TaskHeads
    public var hiddenSize: Int
    /// Longest token sequence one forward pass takes (`max_position_embeddings`).
    public var contextLength: Int
    public var encoder: any HiddenStateEncoder
    public var tokenizer: any TaskTokenizer
    public var embeddings: EmbeddingConfiguration
    public var limits: TaskLimits
    /// `tokenizer.longestTokenBytes`, computed once.
    public var longestTokenBytes: Int

    public init(modelID: String, heads: TaskHeads, hiddenSize: Int, contextLength: Int, encoder: any HiddenStateEncoder,
                tokenizer: any TaskTokenizer, embeddings: EmbeddingConfiguration = .init(), limits: TaskLimits = .init()) {
        self.modelID = modelID; self.heads = heads; self.hiddenSize = hiddenSize; self.contextLength = contextLength
        self.encoder = encoder; self.tokenizer = tokenizer; self.embeddings = embeddings; self.limits = limits
        longestTokenBytes = tokenizer.longestTokenBytes
    }

    /// The checkpoint's heads plus the configured extra ones, on the batcher's body.
    public static func load(directory: URL, model: GPTNeoModel, tokenizer: GPT2Tokenizer, batcher: Batcher, modelID: String,
                            options: TaskOptions) throws -> TaskServingContext {
        let extra = try options.headsConfiguration.map { try HeadsConfiguration.load(from: $0) }
        let heads = try TaskHeads.load(model: model, extra: extra)
        return TaskServingContext(modelID: modelID, heads: heads, hiddenSize: model.config.hiddenSize,
                                  contextLength: model.config.maxPositionEmbeddings, encoder: batcher, tokenizer: tokenizer,
                                  embeddings: options.embeddings, limits: options.limits)
    }

    /// What `/v1/models` lists: generation and embeddings always, plus one task per head.
    public var tasks: [String] {
        var tasks = ["text-generation", "embeddings"]
        if heads.sequenceClassification != nil { tasks.append("text-classification") }
        if heads.tokenClassification != nil { tasks.append("token-classification") }
        if heads.questionAnswering != nil { tasks.append("question-answering") }
        return tasks
    }

    /// Runs several token sequences through the body, all queued at once so the batcher runs them
    /// together, and reduces each one's hidden states with `reduce(index, hidden)` as it arrives, so
    /// that a request's hidden states (tokens × hiddenSize) are never all held at once.
    func encodeAll<Result>(_ sequences: [[Int]], _ reduce: (Int, [Float]) throws -> Result) async throws -> [Result] {
        let encoder = self.encoder
        return try await withThrowingTaskGroup(of: (Int, [Float]).self) { group in
            for (i, tokens) in sequences.enumerated() {
                group.addTask { (i, try await encoder.encode(tokens: tokens)) }
            }
            var results = [Result?](repeating: nil, count: sequences.count)
            for try await (i, hidden) in group {
                guard hidden.count == sequences[i].count * hiddenSize else {
                    throw APIError.internalError("the encoder returned \(hidden.count) values for \(sequences[i].count) tokens")
                }
                results[i] = try reduce(i, hidden)
            }
            return results.map { $0! }
        }
    }
}
