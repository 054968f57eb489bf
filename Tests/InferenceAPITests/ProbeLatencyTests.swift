import Foundation
import XCTest
@testable import InferenceAPI

/// Probes answer in milliseconds while clients flood the server with megabyte prompts: the heavy
/// request work (parsing, tokenizing) runs on its own threads, not on the ones that answer probes.
final class ProbeLatencyTests: XCTestCase {
    /// Runs `body` on a thread of its own (blocking sockets must not occupy Dispatch's or Swift's pools).
    private func onThread(_ body: @escaping @Sendable () -> Void) -> Thread {
        let thread = Thread(block: body)
        thread.start()
        return thread
    }

    func testProbesStayFastUnderAFloodOfLargePrompts() async throws {
        let running = try await RunningServer.start(for: self, maxBodyBytes: 2 << 20)
        let port = running.client.port
        let before = residentBytes()
        // About 1 MB of text to tokenize: each request costs a full tokenization and a large answer.
        let prompt = String(repeating: "The quick brown fox jumps over the lazy dog, again and again. ", count: 16_000)
        let body = Array(#"{"prompt":"\#(prompt)"}"#.utf8)
        let clients = 32, rounds = 1
        let flooding = Locked(clients)
        let statuses = Locked([Int: Int]())
        for _ in 0..<clients {
            _ = onThread {
                for _ in 0..<rounds {
                    let status = (try? LoopbackClient.exchange(port: port, method: "POST", path: "/v1/tokenize", body: body,
                                                               headers: ["Content-Type": "application/json"]).status) ?? -1
                    statuses.withLock { $0[status, default: 0] += 1 }
                }
                flooding.withLock { $0 -= 1 }
            }
        }
        // Probe every 20 ms until the flood is over.
        let latencies = Locked([Double]())
        let probeFailures = Locked(0)
        let prober = onThread {
            while flooding.withLock({ $0 }) > 0 {
                for path in ["/healthz", "/readyz", "/metrics"] {
                    let started = ContinuousClock.now
                    let reply = try? LoopbackClient.exchange(port: port, method: "GET", path: path, body: [], headers: [:])
                    if reply?.status != 200 { probeFailures.withLock { $0 += 1 } }
                    latencies.withLock { $0.append((ContinuousClock.now - started).seconds) }
                }
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
        while !prober.isFinished { try await Task.sleep(for: .milliseconds(50)) }
        let sorted = latencies.withLock { $0 }.sorted()
        XCTAssertGreaterThan(sorted.count, 10, "the flood lasted long enough to probe")
        let percentile = { (p: Double) in sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
        print("probe latency under a flood of \(clients * rounds) 1 MB tokenizations: \(sorted.count) probes, median \(Int(percentile(0.5) * 1000)) ms, p95 \(Int(percentile(0.95) * 1000)) ms, max \(Int((sorted.last ?? 0) * 1000)) ms; flood statuses \(statuses.withLock { $0 })")
        XCTAssertEqual(probeFailures.withLock { $0 }, 0)
        XCTAssertEqual(statuses.withLock { $0 }, [200: clients * rounds])
        XCTAssertLessThan(percentile(0.95), 0.1, "95% of probes answer within 100 ms")
        XCTAssertLessThan(sorted.last ?? 0, 1.0, "no probe waits past Kubernetes' default 1 s timeout")
        XCTAssertLessThan(residentBytes() - before, 1 << 30, "the flood's memory is given back")
        try await running.assertAlive()
    }
}
