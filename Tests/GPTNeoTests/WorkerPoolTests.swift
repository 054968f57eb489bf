import Foundation
import Synchronization
import XCTest
@_spi(Benchmarks) @testable import GPTNeo

/// Runs `regions` regions of `iterations` each and returns how often each iteration ran.
private func counts(_ pool: WorkerPool, iterations: Int, regions: Int) -> [Int] {
    var hits = [Int](repeating: 0, count: iterations)
    hits.withUnsafeMutableBufferPointer { hits in
        let base = hits.baseAddress!
        for _ in 0..<regions { pool.run(iterations) { i in base[i] += 1 } }
    }
    return hits
}

/// The engine's worker pool: every iteration exactly once, whatever the thread count, after the
/// workers parked, from several threads at once; parked workers cost no CPU; deinit ends them.
final class WorkerPoolTests: XCTestCase {
    func testEveryIterationRunsExactlyOncePerRegion() {
        for threads in [1, 2, 3, 4] {
            let pool = WorkerPool(threads: threads)
            for iterations in [0, 1, 2, 3, 7, 64] {
                XCTAssertEqual(counts(pool, iterations: iterations, regions: 500), [Int](repeating: 500, count: iterations),
                               "\(threads) threads, \(iterations) iterations")
            }
        }
    }

    /// The engine's row passes (LayerNorm, GELU): every row exactly once, in ranges that do not overlap,
    /// split or not, for row counts around the threshold and the thread count.
    func testRowRangesCoverEveryRowOnce() {
        for threads in [1, 2, 3] {
            for (rows, elementsPerRow) in [(0, 768), (1, 768), (5, 768), (85, 768), (86, 768), (128, 768), (7, 3072), (21, 3072), (22, 3072), (512, 3072)] {
                let hits = Mutex([Int](repeating: 0, count: rows))
                forEachRowRange(rows: rows, elementsPerRow: elementsPerRow, threads: threads) { range in
                    hits.withLock { for row in range { $0[row] += 1 } }
                }
                XCTAssertEqual(hits.withLock { $0 }, [Int](repeating: 1, count: rows), "\(rows) rows of \(elementsPerRow), \(threads) threads")
            }
        }
    }

    func testRegionsAfterTheWorkersParkedStillRunEverything() {
        let pool = WorkerPool(threads: 3)
        for _ in 0..<5 {
            Thread.sleep(forTimeInterval: 0.005)  // far past the spin time: the workers are parked
            XCTAssertEqual(counts(pool, iterations: 16, regions: 1), [Int](repeating: 1, count: 16))
        }
    }

    /// The workers take part: with iterations that wait for each other, a region only completes if
    /// `threads` threads run at once.
    func testWorkersRunIterationsConcurrently() {
        let pool = WorkerPool(threads: 3)
        let arrived = Atomic<Int>(0)
        let timedOut = Atomic<Bool>(false)
        for _ in 0..<20 {
            arrived.store(0, ordering: .sequentiallyConsistent)
            pool.run(3) { _ in
                arrived.add(1, ordering: .sequentiallyConsistent)
                let deadline = Date().addingTimeInterval(2)
                while arrived.load(ordering: .sequentiallyConsistent) < 3 {
                    if Date() > deadline { timedOut.store(true, ordering: .sequentiallyConsistent); return }
                }
            }
        }
        XCTAssertFalse(timedOut.load(ordering: .sequentiallyConsistent), "an iteration waited 2 s for the other threads")
    }

    func testRegionsFromSeveralThreadsAreSerialized() {
        let pool = WorkerPool.shared(threads: 3)
        let results = Mutex<[[Int]]>([])
        let threads = (0..<3).map { _ in
            Thread {
                let hits = counts(pool, iterations: 9, regions: 300)
                results.withLock { $0.append(hits) }
            }
        }
        for thread in threads { thread.start() }
        let deadline = Date().addingTimeInterval(60)
        while results.withLock({ $0.count }) < 3 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(results.withLock { $0 }, [[Int]](repeating: [Int](repeating: 300, count: 9), count: 3))
    }

    func testBodiesKnowTheyAreInsideARegion() {
        let pool = WorkerPool(threads: 2)
        let outside = Atomic<Int>(0)
        for _ in 0..<100 { pool.run(4) { _ in if !isInsideRegion { outside.add(1, ordering: .relaxed) } } }
        parallelFor(1, threads: 1) { _ in if !isInsideRegion { outside.add(1, ordering: .relaxed) } }
        XCTAssertEqual(outside.load(ordering: .relaxed), 0)
        XCTAssertFalse(isInsideRegion, "the caller's mark is cleared after the region")
    }

    /// Parked workers sleep on a condition: an idle pool uses no CPU.
    func testIdleWorkersUseNoCPU() {
        let pool = WorkerPool(threads: 3)
        _ = counts(pool, iterations: 8, regions: 10)
        Thread.sleep(forTimeInterval: 0.05)
        let before = processCPUSeconds()
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertLessThan(processCPUSeconds() - before, 0.05, "CPU used in 0.5 s of idleness")
    }

    /// Counts the process's threads named as workers, so that threads other tests leave starting or
    /// ending (Dispatch's) do not count.
    func testDeinitEndsTheWorkers() {
        let before = workerThreadCount()
        var pool: WorkerPool? = WorkerPool(threads: 4)
        _ = counts(pool!, iterations: 8, regions: 3)
        // Each worker names itself when it starts: wait for all three names.
        let deadline = Date().addingTimeInterval(5)
        while workerThreadCount() < before + 3, Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(workerThreadCount(), before + 3)
        pool = nil
        XCTAssertEqual(workerThreadCount(), before, "workers joined by deinit")
    }

    private func workerThreadCount() -> Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.filter { task in
            let name = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? ""
            return name.hasPrefix("gptneo-worker")
        }.count
    }

    private func processCPUSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
