import Foundation
import GPTNeo
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Threads for heavy request work

/// A task executor with threads of its own for request work that costs CPU in proportion to its
/// input: JSON parsing, tokenization, response assembly. Swift's cooperative pool has one thread per
/// core; were that work to run there, a flood of large prompts would occupy every thread and
/// `/healthz`, `/readyz` and `/metrics` would wait behind it, past a load balancer's probe timeout.
/// With the work here, the pool stays free for the probes, and these threads run at a lower
/// scheduling priority so that the probes' threads win the CPU when both are ready.
public final class RequestWorkExecutor: TaskExecutor, @unchecked Sendable {
    /// The process's pool, shared by every service.
    public static let shared = RequestWorkExecutor()

    private let condition = NSCondition()
    /// Jobs waiting, oldest at `head` (guarded by `condition`).
    private var jobs: [UnownedJob] = []
    private var head = 0

    /// `threads`: how many jobs run at once (default: one per CPU this process may use, as the engine's
    /// threads: the machine's CPU count would overcommit a container limited by a cgroup quota).
    /// `name`: the threads' name prefix; Linux keeps 15 bytes of a thread name, and a name given before
    /// `start()` never reaches the OS thread, so each thread names itself.
    public init(threads: Int = availableCPUCount(), name: String = "gptneo-work") {
        precondition(threads > 0, "at least one thread")
        for index in 0..<threads {
            let threadName = String("\(name)-\(index)".utf8.prefix(15))!
            Thread { [self] in
                Thread.current.name = threadName
                run()
            }.start()
        }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.withLock {
            jobs.append(job)
            condition.signal()
        }
    }

    /// The executor lives as long as the process: its threads wait for jobs forever.
    private func run() {
        lowerThisThreadsPriority()
        while true {
            let job: UnownedJob = condition.withLock {
                while head == jobs.count { condition.wait() }
                let job = jobs[head]
                head += 1
                if head == jobs.count || head >= 1024 {
                    jobs.removeFirst(head)
                    head = 0
                }
                return job
            }
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }

    /// On Linux the nice value belongs to a thread, and `setpriority(PRIO_PROCESS, 0, ...)` sets the
    /// calling thread's (nice 5: a smaller share of the CPU when others are ready, all of it when not).
    private func lowerThisThreadsPriority() {
        #if os(Linux)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 5)
        #endif
    }
}
