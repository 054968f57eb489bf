import Foundation
import GPTNeo
import Tokenizer

// MARK: - The public face: submit, encode, shutdown, statistics

/// The scheduler behind `Batcher`, with its model type erased.
protocol BatcherCore: Sendable {
    var limits: ModelLimits { get }
    var configuration: BatcherConfiguration { get }
    var statistics: BatcherStatistics { get }
    func enqueue(sequences: Int, promptCount: Int, capacity: Int, makeKind: (UInt64) -> PendingJob.Kind) throws -> UInt64
    func cancel(_ id: UInt64)
    func shutdown(gracePeriod: Duration) async
    func stopSoon()
}

extension Scheduler: BatcherCore {}

/// One engine, one scheduling loop; every method here is safe to call from any task.
///
/// Requests are scheduled with continuous batching: each step of the loop admits waiting requests whose
/// worst-case KV cache fits the budget, runs one prefill chunk of each new prompt together with one
/// decode row of each running choice in a single forward pass, samples, and drops what finished or was
/// cancelled. A request's tokens and logprobs do not depend on what else runs (see `Step.swift`).
public final class Batcher: Sendable {
    let core: any BatcherCore

    public convenience init(model: GPTNeoModel, tokenizer: GPT2Tokenizer, configuration: BatcherConfiguration) {
        let runner = EngineRunner(model: model, endOfSequenceTokenID: tokenizer.endOfTextTokenID, threads: configuration.threads)
        self.init(runner: runner, decoding: tokenizer, configuration: configuration)
    }

    /// Any runner (tests use a fake model). The runner is handed to the loop thread and must not be
    /// used by the caller afterwards.
    init<Runner: ModelRunner>(runner: Runner, decoding: any TokenTextDecoding, configuration: BatcherConfiguration) {
        let scheduler = Scheduler(runner: runner, decoding: decoding, configuration: configuration)
        scheduler.start()
        core = scheduler
    }

    deinit { core.stopSoon() }

    /// Queues a completion. Throws at once for overload, context overflow or invalid parameters.
    /// Cancelling the consuming task (or dropping the stream) cancels the request at the next step.
    public func submit(_ request: GenerationRequest) throws -> AsyncThrowingStream<GenerationEvent, Error> {
        try validate(request, limits: core.limits, configuration: core.configuration)
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: GenerationEvent.self, throwing: Error.self)
        let id = try core.enqueue(
            sequences: request.parameters.n, promptCount: request.promptTokens.count,
            capacity: request.promptTokens.count + request.parameters.maxTokens
        ) { _ in .generate(request, continuation) }
        let core = self.core
        continuation.onTermination = { termination in
            if case .cancelled = termination { core.cancel(id) }
        }
        return stream
    }

    /// Prefill-only work (classification heads, embeddings): the final hidden states (after `ln_f`)
    /// of every position, rows × hiddenSize. Goes through the same queue and batches as generation.
    public func encode(tokens: [Int]) async throws -> [Float] {
        try validatePrompt(tokens, limits: core.limits)
        let core = self.core
        let box = JobIDBox()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[Float], Error>) in
                do {
                    let id = try core.enqueue(sequences: 1, promptCount: tokens.count, capacity: tokens.count) { _ in
                        .encode(tokens: tokens) { continuation.resume(with: $0) }
                    }
                    if box.set(id) { core.cancel(id) }
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            if let id = box.cancel() { core.cancel(id) }
        }
    }

    /// Stops admitting work; running requests finish (or are cancelled after `gracePeriod`).
    public func shutdown(gracePeriod: Duration) async {
        await core.shutdown(gracePeriod: gracePeriod)
    }

    public var statistics: BatcherStatistics { core.statistics }
}

/// Hands a job id from the submitting closure to a cancellation handler that may run first.
private final class JobIDBox: @unchecked Sendable {
    private let lock = NSLock()
    private var id: UInt64?
    private var cancelled = false

    /// Records the id; true if cancellation already happened (the caller cancels the job).
    func set(_ id: UInt64) -> Bool {
        lock.withLock { self.id = id; return cancelled }
    }

    /// Marks cancellation; returns the id if the job was already queued.
    func cancel() -> UInt64? {
        lock.withLock { cancelled = true; return id }
    }
}
