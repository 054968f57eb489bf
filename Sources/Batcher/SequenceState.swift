import GPTNeo

// MARK: - Per-request state owned by the scheduling loop
// Nothing here is shared: the loop creates it at admission and drops it when the request ends, which
// frees the KV caches with it.

/// A unit of work waiting in the queue.
struct PendingJob: Sendable {
    enum Kind: Sendable {
        case generate(GenerationRequest, AsyncThrowingStream<GenerationEvent, Error>.Continuation)
        case encode(tokens: [Int], completion: @Sendable (Result<[Float], Error>) -> Void)
    }
    let id: UInt64
    let kind: Kind
    /// Worst-case KV bytes of the whole job (all choices).
    let reservedBytes: Int
    /// Sequences it will run (its `n`, 1 for encode).
    let sequences: Int
    /// When it was queued.
    var arrival = ContinuousClock.now

    var promptTokens: [Int] {
        switch kind {
        case let .generate(request, _): return request.promptTokens
        case let .encode(tokens, _): return tokens
        }
    }

    /// Ends the job without running it.
    func fail(_ error: Error) {
        switch kind {
        case let .generate(_, continuation): continuation.finish(throwing: error)
        case let .encode(_, completion): completion(.failure(error))
        }
    }
}

/// One choice of a generation request, from its first sampled token to its finish.
final class ChoiceState<Cache: AnyObject> {
    let index: Int
    /// Dropped when the choice finishes, which frees its memory at once.
    var cache: Cache?
    var sampler: TokenSampler
    var history: TokenHistory
    var text: any TokenTextStream
    var stopMatcher: StopStringMatcher
    var generatedTokens = 0
    /// The token sampled last step, to be appended to the cache this step.
    var pendingInput: Int?
    var isFinished: Bool { cache == nil }

    init(index: Int, cache: Cache, sampler: TokenSampler, history: TokenHistory,
         text: any TokenTextStream, stopMatcher: StopStringMatcher) {
        self.index = index; self.cache = cache; self.sampler = sampler; self.history = history
        self.text = text; self.stopMatcher = stopMatcher
    }
}

/// An admitted job: prefill in fixed chunks, then (for generation) decode its choices.
final class ActiveJob<Cache: AnyObject> {
    let id: UInt64
    let prompt: [Int]
    let kind: PendingJob.Kind
    /// KV bytes still reserved for this job; released choice by choice as they finish.
    var reservedBytes: Int
    let bytesPerSequence: Int

    /// The prompt's cache while prefilling; handed to choice 0 afterwards.
    var prefillCache: Cache?
    var prefilledTokens = 0
    var isPrefilling: Bool { prefilledTokens < prompt.count }

    /// Echo logprobs, filled chunk by chunk (entry 0 stays nil).
    var promptLogprobs: [TokenLogprob?] = []
    /// Encode: hidden states of the prompt rows so far.
    var hidden: [Float] = []
    var choices: [ChoiceState<Cache>] = []
    var completionTokens = 0
    var isDone = false

    init(pending: PendingJob, bytesPerSequence: Int, cache: Cache) {
        id = pending.id
        prompt = pending.promptTokens
        kind = pending.kind
        reservedBytes = pending.reservedBytes
        self.bytesPerSequence = bytesPerSequence
        prefillCache = cache
    }

    var parameters: GenerationParameters? {
        if case let .generate(request, _) = kind { return request.parameters }
        return nil
    }

    /// Sequences counted against `maxRunningSequences`.
    var runningSequences: Int {
        if isDone { return 0 }
        if isPrefilling || choices.isEmpty { return parameters?.n ?? 1 }
        return choices.filter { !$0.isFinished }.count
    }

    /// Sends an event; false when the consumer is gone (the job is then cancelled).
    @discardableResult
    func send(_ event: GenerationEvent) -> Bool {
        guard case let .generate(_, continuation) = kind else { return true }
        if case .terminated = continuation.yield(event) { return false }
        return true
    }

    /// Ends the job: frees every cache now; the caller is told by `deliverOutcome` once the
    /// scheduler has returned the job's memory, so a finished stream never sees stale statistics.
    func end(_ result: Result<Void, Error>) {
        guard !isDone else { return }
        isDone = true
        outcome = result
        prefillCache = nil
        for choice in choices { choice.cache = nil }
    }

    private var outcome: Result<Void, Error>?

    /// Finishes the stream or completes the encode call (call once, without holding the lock).
    func deliverOutcome() {
        guard let outcome else { return }
        self.outcome = nil
        switch (kind, outcome) {
        case let (.generate(_, continuation), .success):
            continuation.finish()
        case let (.generate(_, continuation), .failure(error)):
            continuation.finish(throwing: error)
        case let (.encode(_, completion), .success):
            completion(.success(hidden))
        case let (.encode(_, completion), .failure(error)):
            completion(.failure(error))
        }
    }
}
