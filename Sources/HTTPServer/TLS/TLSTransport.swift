import COpenSSL
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - TLS transport

/// TLS over the connection's non-blocking socket: OpenSSL reads and writes the socket itself and
/// reports WANT_READ/WANT_WRITE, which become `.wouldBlock` for the connection's event sources.
/// The handshake runs inside the first reads (server accept state), so a slow or broken one
/// costs only its connection: it is timed like a silent client and fails like a bad request.
final class TLSTransport: Transport {
    let fd: Int32
    /// Kept alive as long as the connection: a reload must not free the context under it.
    private let context: TLSContext
    /// `SSL *`; nil once closed.
    private var ssl: OpaquePointer?
    private var written = 0
    private var closed = false

    init(fd: Int32, context: TLSContext) {
        self.fd = fd
        self.context = context
        ssl = SSL_new(context.context)
        if let ssl {
            SSL_set_fd(ssl, fd)
            SSL_set_accept_state(ssl)
        }
    }

    deinit { close(reset: false) }

    var negotiatedProtocol: String? {
        guard let ssl else { return nil }
        var name: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &name, &length)
        guard let name, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: name, count: Int(length)), as: UTF8.self)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> TransportIO {
        guard let ssl else { return .failed }
        ERR_clear_error()
        let count = SSL_read(ssl, buffer.baseAddress, Int32(min(buffer.count, Int(Int32.max))))
        return count > 0 ? .done(Int(count)) : outcome(of: count)
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> TransportIO {
        guard let ssl else { return .failed }
        ERR_clear_error()
        let count = SSL_write(ssl, bytes.baseAddress, Int32(min(bytes.count, Int(Int32.max))))
        guard count > 0 else { return outcome(of: count) }
        written += Int(count)
        return .done(Int(count))
    }

    /// What a failed `SSL_read`/`SSL_write` means.
    private func outcome(of result: Int32) -> TransportIO {
        let code = errno
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ: return .wouldBlock(.read)
        case SSL_ERROR_WANT_WRITE: return .wouldBlock(.write)
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL:
            // EOF without close_notify, or an interrupted call to retry.
            if code == EINTR { return .wouldBlock(.read) }
            return code == 0 ? .closed : .failed
        default:
            // A bad record or a failed handshake: clear it so no other connection reads it.
            ERR_clear_error()
            return .failed
        }
    }

    /// close_notify (when a handshake completed), then a FIN.
    func shutdownOutput() {
        if let ssl, SSL_is_init_finished(ssl) == 1 {
            ERR_clear_error()
            _ = SSL_shutdown(ssl)
            ERR_clear_error()
        }
        shutdown(fd, Int32(SHUT_WR))
    }

    var hasUnreadInput: Bool { hasBufferedInput || bytesWaitingToBeRead(fd) > 0 }

    var hasBufferedInput: Bool {
        guard let ssl else { return false }
        return SSL_pending(ssl) > 0
    }

    /// Approximate for TLS: application bytes written minus ciphertext not yet acknowledged.
    var bytesDelivered: Int { written - unacknowledgedBytes(fd) }

    /// Nothing can be said before a handshake: the connection is closed, as nginx does.
    func refuse(with response: [UInt8]) {
        close(reset: false)
    }

    func close(reset: Bool) {
        guard !closed else { return }
        closed = true
        if let ssl { SSL_free(ssl) }
        ssl = nil
        if reset {
            var noLinger = linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &noLinger, socklen_t(MemoryLayout<linger>.size))
        }
        closeSocket(fd)
    }
}

// MARK: - Factory

/// Makes TLS transports with the current context; `reload()` swaps in a new certificate/key pair
/// for connections accepted from then on, and keeps the old one if the new files are unusable.
final class TLSTransportFactory: TransportFactory, @unchecked Sendable {
    let configuration: TLSConfiguration
    private let lock = NSLock()
    private var context: TLSContext

    init(_ configuration: TLSConfiguration) throws {
        self.configuration = configuration
        context = try TLSContext(configuration)
    }

    func makeTransport(fd: Int32) -> any Transport {
        TLSTransport(fd: fd, context: lock.withLock { context })
    }

    func reload() throws {
        let fresh = try TLSContext(configuration)
        lock.withLock { context = fresh }
    }
}
