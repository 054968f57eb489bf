import Batcher
import Foundation
import GPTNeo
import Tokenizer

// MARK: - What the handlers need from the model side

/// One token's log-probability and the best alternatives (mirrors the batcher's `TokenLogprob`,
/// which tests cannot construct).
public struct TokenScore: Sendable, Equatable {
    public var tokenID: Int
    public var logprob: Float
    public var top: [TopToken]
    public init(tokenID: Int, logprob: Float, top: [TopToken]) { self.tokenID = tokenID; self.logprob = logprob; self.top = top }
}

public struct TopToken: Sendable, Equatable {
    public var tokenID: Int
    public var logprob: Float
    public init(tokenID: Int, logprob: Float) { self.tokenID = tokenID; self.logprob = logprob }
}

/// What a generation reports, in order (see the batcher's `GenerationEvent`).
public enum CompletionEvent: Sendable, Equatable {
    /// With `echo`: the prompt's tokens; the first has no logprob.
    case prompt(tokens: [Int], logprobs: [TokenScore?])
    case token(choice: Int, tokenID: Int, text: String, logprob: TokenScore?)
    case finished(choice: Int, reason: FinishReason, text: String)
    case usage(promptTokens: Int, completionTokens: Int)
}

public struct BackendStatistics: Sendable, Equatable {
    public var queuedRequests: Int
    public var runningSequences: Int
    public var kvCacheBytesInUse: Int
    public var kvCacheBudgetBytes: Int
    public init(queuedRequests: Int, runningSequences: Int, kvCacheBytesInUse: Int, kvCacheBudgetBytes: Int) {
        self.queuedRequests = queuedRequests; self.runningSequences = runningSequences
        self.kvCacheBytesInUse = kvCacheBytesInUse; self.kvCacheBudgetBytes = kvCacheBudgetBytes
    }
}

/// Generation: the real one is the `Batcher`; tests use a deterministic fake.
public protocol CompletionBackend: Sendable {
    /// Throws `BatcherError` at once for overload, context overflow or invalid parameters.
    func submit(_ request: GenerationRequest) throws -> AsyncThrowingStream<CompletionEvent, Error>
    var statistics: BackendStatistics { get }
    func shutdown(gracePeriod: Duration) async
}

/// Text ↔ ids: the real one is `GPT2Tokenizer`.
public protocol TextTokenizer: Sendable {
    var vocabularySize: Int { get }
    var endOfTextTokenID: Int? { get }
    func encode(_ text: String, allowSpecialTokens: Bool) -> [Int]
    func decode(_ ids: [Int]) -> String
}

extension GPT2Tokenizer: TextTokenizer {}

/// What `/v1/models` and the context checks report.
public struct ModelDescription: Sendable {
    /// The id clients send as `model`.
    public var id: String
    /// Prompt + completion tokens the model can attend to (`max_position_embeddings`).
    public var contextLength: Int
    /// Unix time the server loaded it.
    public var created: Int
    /// Sampling values for fields a completion request leaves out (from `generation_config.json`).
    public var samplingDefaults: SamplingDefaults
    public init(id: String, contextLength: Int, created: Int = Int(Date().timeIntervalSince1970),
                samplingDefaults: SamplingDefaults = SamplingDefaults()) {
        self.id = id; self.contextLength = contextLength; self.created = created; self.samplingDefaults = samplingDefaults
    }
}

// MARK: - The real backend

/// Adapts the `Batcher` to `CompletionBackend`.
public struct BatcherBackend: CompletionBackend {
    public let batcher: Batcher
    public init(batcher: Batcher) { self.batcher = batcher }

    public func submit(_ request: GenerationRequest) throws -> AsyncThrowingStream<CompletionEvent, Error> {
        let events = try batcher.submit(request)
        return AsyncThrowingStream { continuation in
            // Dropping the consumer cancels this task, which drops the batcher's stream and so
            // cancels the request inside the batcher.
            let task = Task {
                do {
                    for try await event in events { continuation.yield(Self.convert(event)) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    public var statistics: BackendStatistics {
        let s = batcher.statistics
        return BackendStatistics(queuedRequests: s.queuedRequests, runningSequences: s.runningSequences,
                                 kvCacheBytesInUse: s.kvCacheBytesInUse, kvCacheBudgetBytes: s.kvCacheBudgetBytes)
    }

    public func shutdown(gracePeriod: Duration) async { await batcher.shutdown(gracePeriod: gracePeriod) }

    static func convert(_ logprob: TokenLogprob) -> TokenScore {
        TokenScore(tokenID: logprob.tokenID, logprob: logprob.logprob,
                   top: logprob.top.map { TopToken(tokenID: $0.tokenID, logprob: $0.logprob) })
    }

    static func convert(_ event: GenerationEvent) -> CompletionEvent {
        switch event {
        case .prompt(let tokens, let logprobs): .prompt(tokens: tokens, logprobs: logprobs.map { $0.map(convert) })
        case .token(let choice, let id, let text, let logprob): .token(choice: choice, tokenID: id, text: text, logprob: logprob.map(convert))
        case .finished(let choice, let reason, let text): .finished(choice: choice, reason: reason, text: text)
        case .usage(let prompt, let completion): .usage(promptTokens: prompt, completionTokens: completion)
        }
    }
}
