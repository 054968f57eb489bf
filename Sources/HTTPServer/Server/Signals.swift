import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Signal handling

extension HTTPServer {
    /// Waits for the first of `signals` (default SIGTERM and SIGINT), then shuts down gracefully
    /// and returns the signal received. A second signal during the drain closes every connection
    /// at once instead of waiting for the grace period (as nginx and uvicorn do). The signals'
    /// default actions are replaced for the life of the process.
    public func runUntilSignalled(_ signals: [Int32] = [SIGTERM, SIGINT]) async -> Int32 {
        let first = Box<CheckedContinuation<Int32, Never>>()
        let watcher = SignalWatcher(signals) { [self] number, count in
            if count == 1 { first.take()?.resume(returning: number) } else { closeAllConnections() }
        }
        let received = await withCheckedContinuation { continuation in
            first.store(continuation)
            watcher.start()
        }
        await shutdown()
        watcher.cancel()
        return received
    }
}

/// Suspends until one of `signals` arrives, and returns it. SIGPIPE is ignored as well.
public func waitForSignal(_ signals: [Int32]) async -> Int32 {
    let first = Box<CheckedContinuation<Int32, Never>>()
    let watcher = SignalWatcher(signals) { number, _ in first.take()?.resume(returning: number) }
    let received = await withCheckedContinuation { continuation in
        first.store(continuation)
        watcher.start()
    }
    watcher.cancel()
    return received
}

/// Calls `handler` on every arrival of one of `signals`, with the number of signals seen so far
/// (1 for the first). Dispatch signal sources run it on a private queue, so no work runs in the
/// signal handler itself. From `start()` on, the signals' default actions are replaced (and
/// SIGPIPE is ignored: a client closing early must not kill the process) until the process ends.
public final class SignalWatcher: @unchecked Sendable {
    private let queue = DispatchQueue(label: "http.signals")
    private let signals: [Int32]
    private let handler: @Sendable (_ signal: Int32, _ count: Int) -> Void
    /// Confined to `queue`.
    private var sources: [any DispatchSourceSignal] = []
    private var count = 0

    public init(_ signals: [Int32], handler: @escaping @Sendable (_ signal: Int32, _ count: Int) -> Void) {
        self.signals = signals
        self.handler = handler
    }

    /// Installs the sources; signals arriving before this are ignored, not fatal.
    public func start() {
        signal(SIGPIPE, SIG_IGN)
        queue.sync {
            for number in signals {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler { [self] in
                    count += 1
                    handler(number, count)
                }
                sources.append(source)
                source.activate()
            }
        }
    }

    /// Stops watching (the signals stay ignored).
    public func cancel() {
        queue.async { [self] in
            sources.forEach { $0.cancel() }
            sources = []
        }
    }
}

/// A value handed from one thread to another once.
private final class Box<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value?
    func store(_ newValue: Value) { lock.withLock { value = newValue } }
    func take() -> Value? { lock.withLock { defer { value = nil }; return value } }
}
