#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Transport

/// The byte stream under an HTTP connection: plain TCP or TLS on the same non-blocking socket.
/// The connection owns the event sources on `fd`; a transport only moves bytes, and says what it
/// waits for when it cannot (a TLS read may need to write first, and a write to read).
/// Confined to the connection's queue, like the connection itself.
protocol Transport: AnyObject {
    /// The socket the connection's read and write sources watch.
    var fd: Int32 { get }
    /// The application protocol agreed during the handshake (ALPN), once known.
    var negotiatedProtocol: String? { get }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> TransportIO
    func write(_ bytes: UnsafeRawBufferPointer) -> TransportIO
    /// Ends our sending side after the last answer: a FIN for TCP, close_notify then a FIN for TLS.
    func shutdownOutput()
    /// Whether bytes from the client are waiting to be read (a plain close would then be a reset).
    var hasUnreadInput: Bool { get }
    /// Whether input is held inside the transport (decrypted TLS data), where no read source sees it.
    var hasBufferedInput: Bool { get }
    /// Of the application bytes written, how many the client's TCP has taken (the send rate).
    var bytesDelivered: Int { get }
    /// Answers a connection refused at the limit with `response` where the protocol allows it
    /// without a handshake, and closes it. Never blocks.
    func refuse(with response: [UInt8])
    /// Releases the socket; `reset` closes with an RST (a stream that failed half way must not
    /// look complete).
    func close(reset: Bool)
}

/// What a read or a write did.
enum TransportIO: Equatable {
    /// Moved this many bytes (at least one).
    case done(Int)
    /// Nothing moved: retry once the socket is readable (`.read`) or writable (`.write`).
    case wouldBlock(TransportInterest)
    /// The client closed its side (EOF, or TLS close_notify).
    case closed
    /// A reset, or a protocol error (a bad TLS record): the connection is over.
    case failed
}

enum TransportInterest: Equatable {
    case read, write
}

/// Why `writeAll` stopped before the end.
enum WriteStop: Equatable {
    /// Retry when the socket is readable (`.read`, a TLS write that must read first) or writable.
    case wouldBlock(TransportInterest)
    /// The client has gone (reset, EOF, a TLS error).
    case failed
}

extension Transport {
    /// Writes `bytes[offset...]`, advancing `offset`, until all is written (nil) or the transport
    /// takes no more.
    func writeAll(_ bytes: [UInt8], from offset: inout Int) -> WriteStop? {
        while offset < bytes.count {
            let start = offset
            let result = bytes.withUnsafeBytes { write(UnsafeRawBufferPointer(rebasing: $0[start...])) }
            switch result {
            case .done(let written): offset += written
            case .wouldBlock(let interest): return .wouldBlock(interest)
            case .closed, .failed: return .failed
            }
        }
        return nil
    }
}

/// Makes the transport for each accepted socket.
protocol TransportFactory: Sendable {
    func makeTransport(fd: Int32) -> any Transport
}

// MARK: - Plain TCP

/// The socket itself.
final class PlainTransport: Transport {
    let fd: Int32
    private var written = 0
    private var closed = false

    init(fd: Int32) { self.fd = fd }

    var negotiatedProtocol: String? { nil }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> TransportIO {
        while true {
            let count = recv(fd, buffer.baseAddress, buffer.count, 0)
            if count > 0 { return .done(count) }
            if count == 0 { return .closed }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock(.read)
            default: return .failed
            }
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> TransportIO {
        while true {
            let count = sendBytes(fd, bytes.baseAddress!, bytes.count)
            if count > 0 {
                written += count
                return .done(count)
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock(.write)
            default: return .failed
            }
        }
    }

    func shutdownOutput() { shutdown(fd, Int32(SHUT_WR)) }

    var hasUnreadInput: Bool { bytesWaitingToBeRead(fd) > 0 }

    var hasBufferedInput: Bool { false }

    var bytesDelivered: Int { written - unacknowledgedBytes(fd) }

    func refuse(with response: [UInt8]) {
        refuseConnection(fd, response: response)
        closed = true
    }

    func close(reset: Bool) {
        guard !closed else { return }
        closed = true
        if reset {
            var noLinger = linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &noLinger, socklen_t(MemoryLayout<linger>.size))
        }
        closeSocket(fd)
    }
}

struct PlainTransportFactory: TransportFactory {
    func makeTransport(fd: Int32) -> any Transport { PlainTransport(fd: fd) }
}
