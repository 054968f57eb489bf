import CSpinPause
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

// Persistent threads for the engine's parallel regions. A decode step runs ~50 regions of 0.05–1 ms
// each; handing each to libdispatch costs a wakeup per region and competes with the server's own
// Dispatch work (socket writes, Swift concurrency) for the same pool threads. Here `threads - 1`
// workers belong to the pool and the calling thread takes part in every region:
//
// - Iterations are handed out by one atomic counter, so a worker that starts late (parked, or
//   preempted by another process) simply takes fewer, and the caller never waits for a worker that has
//   not joined. Which thread computes an iteration never changes its value.
// - Between regions a worker spins for `spinNanoseconds` (with the PAUSE hint), so the back-to-back
//   regions of one step start without a wakeup; then it parks on a condition, so an idle server uses
//   no CPU.
//
// Protocol (all atomics sequentially consistent, so each check-then-act pair below is a Dekker pair):
// `state` counts opens and closes (odd: a region is open). A worker joins by incrementing `joined`,
// then re-reads `state`: if its region is still open it may read the job and take iterations. The
// caller closes the region once every iteration is taken, then waits until `joined` is 0; only then
// does it touch the job fields again. So a worker never runs a stale job or an index twice.

/// Spin time of an idle worker (and of a caller waiting for the last iterations) before parking.
private let spinNanoseconds: UInt64 = 50_000

final class WorkerPool: @unchecked Sendable {
    /// Threads taking part in a region: the workers and the caller.
    let threads: Int
    private let shared: RegionState
    private var workers: [pthread_t] = []
    /// Serializes regions started from different threads (the shared pools serve every engine).
    private let regionLock = NSLock()

    /// A pool of `threads - 1` workers; with 1, regions run on the caller alone.
    init(threads: Int) {
        precondition(threads >= 1, "a pool needs at least one thread")
        self.threads = threads
        shared = RegionState()
        for index in 1..<threads {
            let start = WorkerStart(state: shared, name: "gptneo-worker-\(index)")
            var thread = pthread_t()
            let created = pthread_create(&thread, nil, { argument in
                let start = Unmanaged<WorkerStart>.fromOpaque(argument!).takeRetainedValue()
                Thread.current.name = start.name
                start.state.workerLoop()
                return nil
            }, Unmanaged.passRetained(start).toOpaque())
            precondition(created == 0, "pthread_create failed: \(created)")
            workers.append(thread)
        }
    }

    /// Stops the workers and waits for them to exit.
    deinit {
        shared.stop()
        for thread in workers { pthread_join(thread, nil) }
    }

    /// Runs body(i) for i in 0..<iterations on the caller and the workers; returns when all are done.
    func run(_ iterations: Int, _ body: (Int) -> Void) {
        guard iterations > 1, threads > 1 else { return Self.runOnCaller(iterations, body) }
        precondition(!isInsideRegion, "a parallel region started inside a parallel region")
        regionLock.lock(); defer { regionLock.unlock() }
        markRegion(true); defer { markRegion(false) }
        withoutActuallyEscaping(body) { body in shared.run(iterations, body) }
    }

    /// A region without workers: the same nesting check, so that a nested region fails at 1 thread
    /// as it would (by deadlock) at 2.
    static func runOnCaller(_ iterations: Int, _ body: (Int) -> Void) {
        precondition(!isInsideRegion, "a parallel region started inside a parallel region")
        markRegion(true); defer { markRegion(false) }
        for i in 0..<iterations { body(i) }
    }

    /// Ends the workers' current spin-or-park so they spin again: a caller about to start a burst of
    /// regions calls this first, so the workers' wakeup overlaps its serial work.
    func prepare() { shared.prepare() }
}

/// What a new worker thread needs, passed through pthread_create's context pointer.
private final class WorkerStart {
    let state: RegionState
    let name: String
    init(state: RegionState, name: String) { self.state = state; self.name = name }
}

// MARK: - Region state

/// The state the caller and the workers share; the workers hold it, not the pool, so that the pool's
/// deinit can stop them.
private final class RegionState: @unchecked Sendable {
    /// Opens + closes so far; odd while a region is open.
    let state = Atomic<Int>(0)
    /// The next iteration to hand out.
    let next = Atomic<Int>(0)
    /// Workers inside the open region (or about to find it closed).
    let joined = Atomic<Int>(0)
    /// Workers parked on `parking`, and requests to spin again (`prepare`).
    let sleepers = Atomic<Int>(0)
    let wakeups = Atomic<Int>(0)
    let stopping = Atomic<Bool>(false)
    /// Whether the caller is parked on `finished` waiting for `joined` to reach 0.
    let callerParked = Atomic<Bool>(false)
    let parking = NSCondition()
    let finished = NSCondition()
    /// The open region's job: written by the caller only while closed with `joined` 0.
    var job: ((Int) -> Void)?
    var iterations = 0

    // MARK: Caller side

    func run(_ iterations: Int, _ body: @escaping (Int) -> Void) {
        job = body
        self.iterations = iterations
        next.store(0, ordering: .sequentiallyConsistent)
        state.add(1, ordering: .sequentiallyConsistent)  // open
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            parking.lock(); parking.broadcast(); parking.unlock()
        }
        takeIterations(body, of: iterations)
        state.add(1, ordering: .sequentiallyConsistent)  // close: every iteration is taken
        waitForJoinedWorkers()
        job = nil
    }

    func prepare() {
        guard sleepers.load(ordering: .sequentiallyConsistent) > 0 else { return }
        parking.lock()
        wakeups.add(1, ordering: .sequentiallyConsistent)
        parking.broadcast()
        parking.unlock()
    }

    func stop() {
        parking.lock()
        stopping.store(true, ordering: .sequentiallyConsistent)
        parking.broadcast()
        parking.unlock()
    }

    /// Spins while the workers finish their last iterations, then parks until the last one leaves.
    private func waitForJoinedWorkers() {
        let start = monotonicNanoseconds()
        var spins = 0
        while joined.load(ordering: .sequentiallyConsistent) > 0 {
            spinPause()
            spins += 1
            if spins & 63 == 0 && monotonicNanoseconds() - start > spinNanoseconds {
                finished.lock()
                callerParked.store(true, ordering: .sequentiallyConsistent)
                while joined.load(ordering: .sequentiallyConsistent) > 0 { finished.wait() }
                callerParked.store(false, ordering: .sequentiallyConsistent)
                finished.unlock()
                return
            }
        }
    }

    // MARK: Worker side

    func workerLoop() {
        markRegion(true)  // a worker only ever runs region bodies
        // The state when the pool was made: a worker that starts after the first region opened still
        // finds it.
        var seen = 0
        while let current = awaitChange(from: seen) {
            seen = current
            if current & 1 == 1 { join(current) }
        }
    }

    /// Takes iterations of the region `opened` if it is still open.
    private func join(_ opened: Int) {
        joined.add(1, ordering: .sequentiallyConsistent)
        if state.load(ordering: .sequentiallyConsistent) == opened { runJob() }
        if joined.subtract(1, ordering: .sequentiallyConsistent).newValue == 0
            && callerParked.load(ordering: .sequentiallyConsistent) {
            finished.lock(); finished.broadcast(); finished.unlock()
        }
    }

    /// Not inlined, so that the worker's reference to the job is released before it leaves the region
    /// (the caller's `withoutActuallyEscaping` checks that none is left).
    @inline(never) private func runJob() {
        guard let job else { return }
        takeIterations(job, of: iterations)
    }

    /// The loop of caller and workers alike.
    private func takeIterations(_ body: (Int) -> Void, of iterations: Int) {
        while true {
            let i = next.wrappingAdd(1, ordering: .sequentiallyConsistent).oldValue
            if i >= iterations { return }
            body(i)
        }
    }

    /// The new `state` once it differs from `seen`: spinning first, then parked; nil when stopping.
    private func awaitChange(from seen: Int) -> Int? {
        while true {
            let start = monotonicNanoseconds()
            var spins = 0
            while true {
                let current = state.load(ordering: .sequentiallyConsistent)
                if current != seen { return current }
                if stopping.load(ordering: .relaxed) { return nil }
                spinPause()
                spins += 1
                if spins & 63 == 0 && monotonicNanoseconds() - start > spinNanoseconds { break }
            }
            parking.lock()
            let wakeup = wakeups.load(ordering: .sequentiallyConsistent)
            sleepers.add(1, ordering: .sequentiallyConsistent)
            while state.load(ordering: .sequentiallyConsistent) == seen && !stopping.load(ordering: .sequentiallyConsistent)
                  && wakeups.load(ordering: .sequentiallyConsistent) == wakeup {
                parking.wait()
            }
            sleepers.subtract(1, ordering: .sequentiallyConsistent)
            parking.unlock()
            if stopping.load(ordering: .sequentiallyConsistent) { return nil }
        }
    }
}

private func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

// MARK: - Nesting check

/// Marks the threads inside a region. A region started from inside one would wait for workers that
/// are busy running its caller: a deadlock, so it is refused loudly instead.
private let insideRegionKey: pthread_key_t = {
    var key = pthread_key_t()
    precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
    return key
}()

var isInsideRegion: Bool { pthread_getspecific(insideRegionKey) != nil }

func markRegion(_ inside: Bool) {
    _ = pthread_setspecific(insideRegionKey, inside ? UnsafeRawPointer(bitPattern: 1) : nil)
}

// MARK: - Shared pools

/// One pool per thread count, living as long as the process (as libdispatch's or OpenMP's threads):
/// every engine and loader with the same `threads` shares it, and an idle pool's threads are parked.
private let sharedPools = Mutex<[Int: WorkerPool]>([:])

extension WorkerPool {
    static func shared(threads: Int) -> WorkerPool {
        sharedPools.withLock { pools in
            if let pool = pools[threads] { return pool }
            let pool = WorkerPool(threads: threads)
            pools[threads] = pool
            return pool
        }
    }
}
