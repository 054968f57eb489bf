import Dispatch

// MARK: - Socket events

/// The read and write sources that drive one connection on its queue, whatever protocol it
/// speaks: reading starts on, writing is armed only while output waits. Confined to the queue.
final class SocketEvents {
    private var readSource: DispatchSourceRead?
    private var writeSource: DispatchSourceWrite?
    private(set) var isReadSuspended = false
    private var isWriteSuspended = false
    private var cancelledSources = 0
    private var released: (() -> Void)?

    /// Installs the sources on `fd`; `released` runs once both are cancelled, when Dispatch no
    /// longer watches the descriptor (only then may it be closed or handed on).
    func install(fd: Int32, queue: DispatchQueue, readable: @escaping () -> Void, writable: @escaping () -> Void,
                 released: @escaping () -> Void) {
        dispatchPrecondition(condition: .onQueue(queue))
        self.released = released
        let read = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        read.setEventHandler(handler: readable)
        read.setCancelHandler { [self] in sourceCancelled() }
        let write = DispatchSource.makeWriteSource(fileDescriptor: fd, queue: queue)
        write.setEventHandler(handler: writable)
        write.setCancelHandler { [self] in sourceCancelled() }
        readSource = read
        writeSource = write
        read.activate()
        // Activated then suspended at once: we are on `queue`, so no event runs in between.
        write.activate()
        write.suspend()
        isWriteSuspended = true
    }

    /// Returns whether reading changed.
    @discardableResult
    func setReading(_ on: Bool) -> Bool {
        guard let readSource, on == isReadSuspended else { return false }
        if on { readSource.resume() } else { readSource.suspend() }
        isReadSuspended = !on
        return true
    }

    func setWriting(_ on: Bool) {
        guard let writeSource, on == isWriteSuspended else { return }
        if on { writeSource.resume() } else { writeSource.suspend() }
        isWriteSuspended = !on
    }

    /// Cancels both sources; `released` follows once Dispatch has let go of them.
    func cancel() {
        readSource?.cancel()
        writeSource?.cancel()
        // A suspended source only delivers its cancel handler once resumed.
        setReading(true)
        setWriting(true)
    }

    private func sourceCancelled() {
        cancelledSources += 1
        guard cancelledSources == 2 else { return }
        // The sources' handlers hold the connection: dropping them breaks that cycle.
        readSource = nil
        writeSource = nil
        let released = self.released
        self.released = nil
        released?()
    }
}
