import DequeModule
import Foundation
import GPTNeo
import Logging

// MARK: - The scheduling loop
// One thread owns the runner (the engine and its scratch memory) and every KV cache. Callers only touch
// the queue below, under `condition`'s lock; the loop takes work from it between steps. A step is one
// `forward` call holding one chunk of every prefilling prompt (within a token budget) and one row per
// running choice, so that a long prompt never stalls the streams already running; with none running,
// a prompt's chunks go together up to the budget (Step.swift).

final class Scheduler<Runner: ModelRunner>: @unchecked Sendable {
    enum LifeState { case running, draining(deadline: ContinuousClock.Instant), stopped }

    // MARK: Shared with callers (guarded by `condition`)
    private let condition = NSCondition()
    private var waiting = Deque<PendingJob>()
    /// Sequences of the waiting jobs (their `n`s).
    private var waitingSequences = 0
    private var runningIDs: Set<UInt64> = []
    private var cancelledIDs: Set<UInt64> = []
    private var nextID: UInt64 = 1
    private var lifeState = LifeState.running
    private var shutdownWaiters: [CheckedContinuation<Void, Never>] = []
    private var reservedBytes = 0
    private var snapshot: BatcherStatistics
    /// Whether steps have run since the memory kept from ended caches was last given back.
    private var keptCacheMemoryToRelease = false

    // MARK: Owned by the loop thread
    let runner: Runner
    let configuration: BatcherConfiguration
    let decoding: any TokenTextDecoding
    var limits: ModelLimits { runner.limits }
    var active: [ActiveJob<Runner.Cache>] = []
    /// One per sampling thread (`sampleDecodeRows` gives worker w the choices w, w + threads, …).
    let samplingScratch: [SamplingScratch]
    var sampledThisStep = 0
    private let logger = Logger(label: "gptneo.batcher")

    init(runner: Runner, decoding: any TokenTextDecoding, configuration: BatcherConfiguration) {
        precondition(configuration.prefillChunkTokens > 0 && configuration.maxRunningSequences > 0
                     && configuration.maxQueuedRequests >= 0, "invalid batcher configuration")
        self.runner = runner
        self.decoding = decoding
        self.configuration = configuration
        samplingScratch = (0..<max(1, runner.threads)).map { _ in SamplingScratch(vocabularySize: runner.limits.vocabularySize) }
        snapshot = BatcherStatistics(queuedRequests: 0, runningSequences: 0, kvCacheBytesInUse: 0,
                                     kvCacheBudgetBytes: configuration.kvCacheBudgetBytes)
    }

    func start() {
        runner.keepFreedCacheMemory(upTo: configuration.kvCacheBudgetBytes)
        let thread = Thread { [self] in
            // Named from inside: on Linux a name set before start() never reaches the OS thread, which
            // then shows up in top and /proc under its creator's Dispatch name.
            Thread.current.name = "gptneo-batcher"
            runLoop()
        }
        thread.stackSize = 8 << 20
        thread.start()
    }

    // MARK: - Caller side

    /// Queues a job built from a fresh id; throws when the queue is full or the batcher stopping.
    func enqueue(sequences: Int, promptCount: Int, capacity: Int, makeKind: (UInt64) -> PendingJob.Kind) throws -> UInt64 {
        let total = reservation(sequences: sequences, capacity: capacity, bytesPerSequence: runner.cacheByteSize)
        guard total <= configuration.kvCacheBudgetBytes else {
            throw BatcherError.exceedsMemoryBudget(requiredBytes: total, budgetBytes: configuration.kvCacheBudgetBytes)
        }
        condition.lock()
        defer { condition.unlock() }
        guard case .running = lifeState else { throw BatcherError.shuttingDown }
        // A burst at an idle server is not an overload: requests the loop can admit at once don't count.
        let freeSequences = configuration.maxRunningSequences - snapshot.runningSequences - waitingSequences
        guard waiting.count < configuration.maxQueuedRequests || freeSequences >= sequences else {
            throw BatcherError.overloaded
        }
        let id = nextID
        nextID += 1
        waiting.append(PendingJob(id: id, kind: makeKind(id), reservedBytes: total, sequences: sequences))
        waitingSequences += sequences
        snapshot.queuedRequests = waiting.count
        condition.signal()
        return id
    }

    /// Cancels a job: a waiting one leaves the queue now, a running one at the next step.
    func cancel(_ id: UInt64) {
        condition.lock()
        var removed: PendingJob?
        if let index = waiting.firstIndex(where: { $0.id == id }) {
            removed = waiting.remove(at: index)
            waitingSequences -= removed?.sequences ?? 0
            snapshot.queuedRequests = waiting.count
        } else if runningIDs.contains(id) {
            cancelledIDs.insert(id)
            condition.signal()
        }
        condition.unlock()
        removed?.fail(CancellationError())
    }

    /// Stops admitting; running jobs get until `gracePeriod` to finish. Returns when the loop has exited.
    func shutdown(gracePeriod: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            condition.lock()
            if case .stopped = lifeState {
                condition.unlock()
                continuation.resume()
                return
            }
            shutdownWaiters.append(continuation)
            let drained = beginDraining(gracePeriod: gracePeriod)
            condition.unlock()
            for job in drained { job.fail(BatcherError.shuttingDown) }
        }
    }

    /// Like `shutdown` without waiting (the owner is gone).
    func stopSoon() {
        condition.lock()
        let drained = beginDraining(gracePeriod: .zero)
        condition.unlock()
        for job in drained { job.fail(BatcherError.shuttingDown) }
    }

    /// Caller holds the lock. Returns the waiting jobs to fail outside it.
    private func beginDraining(gracePeriod: Duration) -> [PendingJob] {
        let deadline = ContinuousClock.now + gracePeriod
        switch lifeState {
        case .running: lifeState = .draining(deadline: deadline)
        case let .draining(old): lifeState = .draining(deadline: min(old, deadline))
        case .stopped: return []
        }
        let drained = Array(waiting)
        waiting.removeAll()
        waitingSequences = 0
        snapshot.queuedRequests = 0
        condition.signal()
        return drained
    }

    var statistics: BatcherStatistics {
        condition.lock()
        defer { condition.unlock() }
        return snapshot
    }

    // MARK: - Loop side

    private func runLoop() {
        while takeWork() { step() }
    }

    /// Applies cancellations, admits what fits, and sleeps while there is nothing to do.
    /// Returns false when the loop should exit.
    private func takeWork() -> Bool {
        condition.lock()
        while true {
            var cancelled = cancelledIDs
            cancelledIDs.removeAll()
            var shutdownError = false
            if case let .draining(deadline) = lifeState, ContinuousClock.now >= deadline {
                cancelled.formUnion(active.map(\.id))
                shutdownError = true
            }
            // An idle batcher lets a burst gather before its first step (configuration.admissionWindow).
            if active.isEmpty, cancelled.isEmpty, case .running = lifeState, let first = waiting.first {
                let deadline = first.arrival + configuration.admissionWindow
                if ContinuousClock.now < deadline {
                    _ = condition.wait(until: dateAfter(ContinuousClock.now.duration(to: deadline)))
                    continue
                }
            }
            let admitted = admit()
            if !cancelled.isEmpty || !admitted.isEmpty {
                // Cache allocation and the callers' completion handlers run outside the lock.
                condition.unlock()
                for job in active where cancelled.contains(job.id) {
                    job.end(.failure(shutdownError ? BatcherError.shuttingDown : CancellationError()))
                }
                for pending in admitted { activate(pending) }
                condition.lock()
                let ended = removeEndedJobs()
                if !ended.isEmpty {
                    condition.unlock()
                    for job in ended { job.deliverOutcome() }
                    condition.lock()
                }
            }
            if !active.isEmpty {
                keptCacheMemoryToRelease = true
                condition.unlock()
                return true
            }
            if case .draining = lifeState {
                lifeState = .stopped
                let waiters = shutdownWaiters
                shutdownWaiters = []
                condition.unlock()
                for waiter in waiters { waiter.resume() }
                return false
            }
            if keptCacheMemoryToRelease {
                // Busy again within the delay (a client's next request), the memory is reused as it is.
                if !condition.wait(until: dateAfter(configuration.idleBeforeReleasingCacheMemory)), waiting.isEmpty,
                   cancelledIDs.isEmpty {
                    keptCacheMemoryToRelease = false
                    condition.unlock()
                    runner.releaseKeptCacheMemory()
                    condition.lock()
                }
            } else {
                condition.wait()
            }
        }
    }

    /// Caller holds the lock. Pops the waiting jobs that fit, first come first served: the head is
    /// never overtaken, so a large request cannot starve behind a stream of small ones.
    private func admit() -> [PendingJob] {
        var admitted: [PendingJob] = []
        var sequences = active.reduce(0) { $0 + $1.runningSequences }
        while let head = waiting.first,
              reservedBytes + head.reservedBytes <= configuration.kvCacheBudgetBytes,
              sequences + head.sequences <= configuration.maxRunningSequences {
            waiting.removeFirst()
            waitingSequences -= head.sequences
            reservedBytes += head.reservedBytes
            sequences += head.sequences
            runningIDs.insert(head.id)
            admitted.append(head)
        }
        snapshot.queuedRequests = waiting.count
        snapshot.kvCacheBytesInUse = reservedBytes
        snapshot.runningSequences = sequences
        return admitted
    }

    private func activate(_ pending: PendingJob) {
        let capacity: Int
        switch pending.kind {
        case let .generate(request, _): capacity = request.promptTokens.count + request.parameters.maxTokens
        case let .encode(tokens, _): capacity = tokens.count
        }
        let perSequence = runner.cacheByteSize(capacity: capacity)
        active.append(ActiveJob(pending: pending, bytesPerSequence: perSequence, cache: runner.makeCache(capacity: capacity)))
    }

    /// Caller holds the lock. Returns the memory of finished choices and removes the ended jobs,
    /// which the caller then tells their outcome outside the lock.
    private func removeEndedJobs() -> [ActiveJob<Runner.Cache>] {
        for job in active {
            let held = job.isDone ? 0 : job.bytesPerSequence * job.runningSequences
            if held < job.reservedBytes {
                reservedBytes -= job.reservedBytes - held
                job.reservedBytes = held
            }
        }
        let ended = active.filter(\.isDone)
        for job in ended { runningIDs.remove(job.id) }
        active.removeAll { $0.isDone }
        snapshot.kvCacheBytesInUse = reservedBytes
        snapshot.runningSequences = active.reduce(0) { $0 + $1.runningSequences }
        return ended
    }

    /// One forward pass and what follows from it.
    private func step() {
        let plan = planStep(active)
        do {
            // Every live job contributes an item each step; none only when all that is left has ended.
            let outputs = plan.items.isEmpty ? [] : try runner.forward(plan.items)
            let sampled = sampleDecodeRows(outputs, of: plan)
            for (index, output) in outputs.enumerated() { consume(output, of: plan.slots[index], sampled: sampled[index]) }
            // The step's events have woken the threads that deliver them (the request tasks, the
            // sockets, a client on this machine). Let them run now, between steps: started later,
            // they would preempt an engine thread in the middle of a region, and the region's end
            // waits for that thread (alternated A/Bs at 125M, one stream: 0.3-2.6 % shorter steps,
            // about the machine's noise; fewer preemptions of the engine worker per token).
            if sampledThisStep > 0 { sched_yield() }
            condition.lock()
            snapshot.steps += 1
            snapshot.generatedTokens += sampledThisStep
            sampledThisStep = 0
        } catch {
            let message = String(describing: error)
            logger.error("forward pass failed; failing the requests in the batch", metadata: [
                "error": "\(message)", "items": "\(plan.items.count)",
            ])
            for job in Set(plan.slots.map(\.job.id)).compactMap({ id in active.first { $0.id == id } }) {
                job.end(.failure(BatcherError.engineFailure(message)))
            }
            condition.lock()
        }
        let ended = removeEndedJobs()
        condition.unlock()
        for job in ended { job.deliverOutcome() }
    }
}

/// The wall-clock moment `duration` from now, for `NSCondition.wait(until:)`.
private func dateAfter(_ duration: Duration) -> Date {
    Date(timeIntervalSinceNow: Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18)
}
