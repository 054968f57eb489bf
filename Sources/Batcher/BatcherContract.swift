import Foundation
import GPTNeo
import Tokenizer

// CONTRACT (written before the implementation): the public surface the API codes against.
// The batcher's implementer owns this file and may split it; changing a signature needs a note.

/// Sampling and stopping for one completion request (OpenAI semantics unless noted).
public struct GenerationParameters: Sendable {
    public var maxTokens: Int = 16
    /// 0 means greedy.
    public var temperature: Double = 1
    public var topP: Double = 1
    /// Extension; 0 = off.
    public var topK: Int = 0
    public var presencePenalty: Double = 0
    public var frequencyPenalty: Double = 0
    /// Extension, transformers' formula; 1 = off.
    public var repetitionPenalty: Double = 1
    public var logitBias: [Int: Double] = [:]
    public var seed: UInt64? = nil
    public var stop: [String] = []
    public var ignoreEOS: Bool = false
    /// Number of top alternatives to report per token (0...20), nil for no logprobs.
    public var logprobs: Int? = nil
    /// Report the prompt's tokens (with logprobs when `logprobs` is set) before the completion.
    public var echo: Bool = false
    /// Number of choices generated from the one prompt.
    public var n: Int = 1
    public init() {}
}

public struct GenerationRequest: Sendable {
    public var promptTokens: [Int]
    public var parameters: GenerationParameters
    public init(promptTokens: [Int], parameters: GenerationParameters) {
        self.promptTokens = promptTokens; self.parameters = parameters
    }
}

public enum FinishReason: String, Sendable { case stop, length }

/// One token's log-probability and the best alternatives (log-softmax of the raw logits).
public struct TokenLogprob: Sendable, Equatable {
    public var tokenID: Int
    public var logprob: Float
    /// Up to `logprobs` alternatives, best first (may include the chosen token).
    public var top: [(tokenID: Int, logprob: Float)]
    public static func == (a: Self, b: Self) -> Bool {
        a.tokenID == b.tokenID && a.logprob == b.logprob
            && a.top.map(\.tokenID) == b.top.map(\.tokenID) && a.top.map(\.logprob) == b.top.map(\.logprob)
    }
}

public enum GenerationEvent: Sendable {
    /// With `echo`: the prompt's tokens; the first has no logprob (nil).
    case prompt(tokens: [Int], logprobs: [TokenLogprob?])
    /// A token of choice `choice`. `text` is the text this token made complete, after stop-string
    /// handling (text that may begin a stop string is held back until it is known not to).
    case token(choice: Int, tokenID: Int, text: String, logprob: TokenLogprob?)
    /// Choice `choice` is done; `text` is any held-back text released at the end.
    case finished(choice: Int, reason: FinishReason, text: String)
    /// Last event of the request.
    case usage(promptTokens: Int, completionTokens: Int)
}

public enum BatcherError: Error, Sendable, Equatable {
    /// The waiting queue is full: the API answers 429.
    case overloaded
    /// Prompt + max_tokens exceed the model's context; the message names the numbers.
    case contextLengthExceeded(promptTokens: Int, maxTokens: Int, contextLength: Int)
    /// A request that can never fit the KV budget.
    case exceedsMemoryBudget(requiredBytes: Int, budgetBytes: Int)
    case invalidRequest(String)
    /// The batcher is shutting down.
    case shuttingDown
}

public struct BatcherConfiguration: Sendable {
    /// KV cache budget in bytes for all running sequences.
    public var kvCacheBudgetBytes: Int = 2 << 30
    /// Requests waiting for admission beyond which `submit` throws `.overloaded`.
    public var maxQueuedRequests: Int = 256
    /// Most sequences in the running decode batch.
    public var maxRunningSequences: Int = 64
    /// Prefill chunk length in tokens (fixed, so results do not depend on the load).
    public var prefillChunkTokens: Int = 128
    public init() {}
}

/// A snapshot for /metrics.
public struct BatcherStatistics: Sendable {
    public var queuedRequests: Int
    public var runningSequences: Int
    public var kvCacheBytesInUse: Int
    public var kvCacheBudgetBytes: Int
}

/// One engine, one scheduling loop; every method here is safe to call from any task.
public final class Batcher: Sendable {
    public init(model: GPTNeoModel, tokenizer: GPT2Tokenizer, configuration: BatcherConfiguration) { fatalError("not implemented") }
    /// Queues a completion. Throws at once for overload, context overflow or invalid parameters.
    /// Cancelling the consuming task (or dropping the stream) cancels the request at the next step.
    public func submit(_ request: GenerationRequest) throws -> AsyncThrowingStream<GenerationEvent, Error> { fatalError("not implemented") }
    /// Prefill-only work (classification heads, embeddings): the final hidden states (after `ln_f`)
    /// of every position, rows × hiddenSize. Goes through the same queue and batches as generation.
    public func encode(tokens: [Int]) async throws -> [Float] { fatalError("not implemented") }
    /// Stops admitting work; running requests finish (or are cancelled after `gracePeriod`).
    public func shutdown(gracePeriod: Duration) async { fatalError("not implemented") }
    public var statistics: BatcherStatistics { fatalError("not implemented") }
}
