import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Signal handling

extension HTTPServer {
    /// Waits for the first of `signals` (default SIGTERM and SIGINT), then shuts down gracefully
    /// and returns the signal received. The executable calls this after `start()` and exits 0.
    /// The signals' default actions are replaced for the life of the process.
    public func runUntilSignalled(_ signals: [Int32] = [SIGTERM, SIGINT]) async -> Int32 {
        let received = await waitForSignal(signals)
        await shutdown()
        return received
    }
}

/// Suspends until one of `signals` arrives (through Dispatch signal sources, so no work runs in
/// the signal handler itself). SIGPIPE is ignored as well: a client closing early must not kill us.
public func waitForSignal(_ signals: [Int32]) async -> Int32 {
    signal(SIGPIPE, SIG_IGN)
    let queue = DispatchQueue(label: "http.signals")
    let box = SignalSources()
    return await withCheckedContinuation { continuation in
        queue.sync {
            for number in signals {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler {
                    guard !box.fired else { return }
                    box.fired = true
                    box.sources.forEach { $0.cancel() }
                    continuation.resume(returning: number)
                }
                box.sources.append(source)
                source.activate()
            }
        }
    }
}

/// The sources of one wait, confined to its queue.
private final class SignalSources: @unchecked Sendable {
    var sources: [any DispatchSourceSignal] = []
    var fired = false
}
