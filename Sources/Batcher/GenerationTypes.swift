import Foundation
import GPTNeo

// MARK: - Request

/// Sampling and stopping for one completion request (OpenAI semantics unless noted).
public struct GenerationParameters: Sendable {
    /// Tokens to generate per choice (0 is allowed: with `echo`, only the prompt is scored).
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

// MARK: - Events

public enum FinishReason: String, Sendable { case stop, length }

/// One token's log-probability and the best alternatives (log-softmax of the raw logits).
public struct TokenLogprob: Sendable, Equatable {
    public var tokenID: Int
    public var logprob: Float
    /// Up to `logprobs` alternatives, best first (may include the chosen token); ties go to the lower id.
    public var top: [(tokenID: Int, logprob: Float)]
    public init(tokenID: Int, logprob: Float, top: [(tokenID: Int, logprob: Float)]) {
        self.tokenID = tokenID; self.logprob = logprob; self.top = top
    }
    public static func == (a: Self, b: Self) -> Bool {
        a.tokenID == b.tokenID && a.logprob.bitPattern == b.logprob.bitPattern
            && a.top.map(\.tokenID) == b.top.map(\.tokenID)
            && a.top.map(\.logprob.bitPattern) == b.top.map(\.logprob.bitPattern)
    }
}

public enum GenerationEvent: Sendable {
    /// With `echo`: the prompt's tokens, sent once the prompt is prefilled. `logprobs` has one entry
    /// per token (the first is nil) when `logprobs` was requested, and is empty otherwise.
    case prompt(tokens: [Int], logprobs: [TokenLogprob?])
    /// A token of choice `choice`. `text` is the text this token made complete, after stop-string
    /// handling (text that may begin a stop string is held back until it is known not to).
    /// The end-of-sequence token that stops a choice is not reported as a token.
    case token(choice: Int, tokenID: Int, text: String, logprob: TokenLogprob?)
    /// Choice `choice` is done; `text` is any held-back text released at the end.
    case finished(choice: Int, reason: FinishReason, text: String)
    /// Last event of the request. `completionTokens` counts every sampled token of every choice
    /// (including a stopping end-of-sequence token).
    case usage(promptTokens: Int, completionTokens: Int)
}

// MARK: - Errors

public enum BatcherError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The waiting queue is full: the API answers 429.
    case overloaded
    /// Prompt + max_tokens exceed the model's context; the message names the numbers.
    case contextLengthExceeded(promptTokens: Int, maxTokens: Int, contextLength: Int)
    /// A request that can never fit the KV budget.
    case exceedsMemoryBudget(requiredBytes: Int, budgetBytes: Int)
    case invalidRequest(String)
    /// A parameter out of range; `param` is its name in OpenAI's API.
    case invalidParameter(param: String, message: String)
    /// The batcher is shutting down.
    case shuttingDown
    /// The engine failed on a batch this request was part of (a bug, not a user error).
    case engineFailure(String)

    public var description: String {
        switch self {
        case .overloaded:
            return "too many requests are waiting; try again later"
        case let .contextLengthExceeded(promptTokens, maxTokens, contextLength):
            return "this model's maximum context length is \(contextLength) tokens, but \(promptTokens) prompt tokens"
                + " and \(maxTokens) completion tokens were requested"
        case let .exceedsMemoryBudget(requiredBytes, budgetBytes):
            return "the request needs \(requiredBytes) bytes of KV cache, more than the budget of \(budgetBytes) bytes"
        case let .invalidRequest(message), let .invalidParameter(_, message):
            return message
        case .shuttingDown:
            return "the server is shutting down"
        case let .engineFailure(message):
            return "the engine failed: \(message)"
        }
    }
}

// MARK: - Configuration and statistics

public struct BatcherConfiguration: Sendable {
    /// KV cache budget in bytes for all running sequences.
    public var kvCacheBudgetBytes: Int = 2 << 30
    /// Requests waiting for admission beyond which `submit` throws `.overloaded`.
    public var maxQueuedRequests: Int = 256
    /// Most sequences in the running decode batch.
    public var maxRunningSequences: Int = 64
    /// Prefill chunk length in tokens: a prompt's share of a step while other sequences decode (with
    /// none decoding, its chunks go together up to `maxPrefillTokensPerStep`). Chunk boundaries are
    /// multiples of it, though results do not depend on them.
    public var prefillChunkTokens: Int = 128
    /// Most prompt tokens prefilled in one step (at least one chunk always runs), so that a burst of
    /// long prompts does not stall the running streams.
    public var maxPrefillTokensPerStep: Int = 512
    /// How long a request arriving at an idle batcher waits for others before the first step: a burst
    /// then shares one prefill, instead of its first request running alone and the others in the
    /// next step while it waits. Zero: the first step starts at once.
    public var admissionWindow: Duration = .milliseconds(3)
    /// What one request may ask for.
    public var limits = GenerationLimits()
    /// Threads of the engine's parallel loops.
    public var threads: Int = availableCPUCount()
    /// Memory of ended requests' KV caches is kept for the next ones (up to the budget), and given back
    /// once the batcher has had nothing to do for this long. Minutes rather than seconds, as a model's
    /// keep-alive in Ollama: memory given back must be faulted in again, page by page, by the next burst.
    public var idleBeforeReleasingCacheMemory: Duration = .seconds(300)
    public init() {}
}

/// A snapshot for /metrics.
public struct BatcherStatistics: Sendable, Equatable {
    public var queuedRequests: Int
    public var runningSequences: Int
    public var kvCacheBytesInUse: Int
    public var kvCacheBudgetBytes: Int
    /// Forward passes run since start.
    public var steps: Int = 0
    /// Tokens sampled since start (all requests, all choices).
    public var generatedTokens: Int = 0
    public init(queuedRequests: Int, runningSequences: Int, kvCacheBytesInUse: Int, kvCacheBudgetBytes: Int, steps: Int = 0, generatedTokens: Int = 0) {
        self.queuedRequests = queuedRequests; self.runningSequences = runningSequences
        self.kvCacheBytesInUse = kvCacheBytesInUse; self.kvCacheBudgetBytes = kvCacheBudgetBytes
        self.steps = steps; self.generatedTokens = generatedTokens
    }
}
