import Dispatch

// MARK: - Handing a streamed body's pieces to a connection

/// What a connection did with one piece of a streamed body.
enum StreamWriteOutcome {
    /// Queued and flushed as far as the socket took it; the writer may go on.
    case sent
    /// Queued, but the backlog is over the limit: the writer must wait for it to drain.
    case mustWait
    /// The client is gone (or the response ended): nothing was queued.
    case failed
}

extension DispatchQueue {
    /// Runs a body writer's piece through a connection's queue. The piece is queued and flushed with
    /// `sync`, which runs the block on the calling thread whenever the queue is free: a streamed token
    /// then reaches the socket without waking a Dispatch thread and without resuming the writer's task
    /// from there, two thread hand-offs per token that cost the engine's threads their cores on a
    /// small machine. Only a full backlog suspends the writer, through `wait` on the queue.
    func writeStreamPiece(_ write: () -> StreamWriteOutcome,
                          wait: @escaping @Sendable (CheckedContinuation<Void, any Error>) -> Void) async throws {
        switch sync(execute: write) {
        case .sent:
            return
        case .failed:
            throw HTTPServerError.clientDisconnected
        case .mustWait:
            try await withCheckedThrowingContinuation { continuation in
                self.async { wait(continuation) }
            }
        }
    }
}
