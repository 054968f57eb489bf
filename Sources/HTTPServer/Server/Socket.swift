#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Errors

/// What can go wrong running the server, as a caller sees it.
public enum HTTPServerError: Error, Equatable, CustomStringConvertible {
    /// The host is not a numeric address or a name the resolver knows.
    case invalidAddress(host: String, port: Int)
    /// `socket`/`bind`/`listen` failed (port in use, permission denied...).
    case bindFailed(host: String, port: Int, reason: String)
    /// A streamed response was written after the client went away.
    case clientDisconnected
    /// A configuration value is out of range (names the field).
    case invalidConfiguration(String)
    /// The TLS certificate or key cannot be used (missing, unreadable, malformed, mismatched).
    case tls(String)

    public var description: String {
        switch self {
        case .invalidAddress(let host, let port): "cannot resolve listen address \(host):\(port)"
        case .bindFailed(let host, let port, let reason): "cannot listen on \(host):\(port): \(reason)"
        case .clientDisconnected: "the client closed the connection"
        case .invalidConfiguration(let problem): "invalid HTTP server configuration: \(problem)"
        case .tls(let problem): problem
        }
    }
}

func errnoDescription(_ code: Int32 = errno) -> String {
    String(cString: strerror(code)) + " (errno \(code))"
}

// MARK: - Listening socket

/// Opens a non-blocking listening socket on `host:port` (IPv4 or IPv6, numeric or resolvable),
/// with `SO_REUSEADDR`. Returns the descriptor and the bound port (port 0 picks an ephemeral one).
func makeListeningSocket(host: String, port: Int, backlog: Int32) throws -> (fd: Int32, port: Int) {
    var hints = addrinfo()
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
    hints.ai_family = AF_UNSPEC
    #if canImport(Glibc)
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    #else
    hints.ai_socktype = SOCK_STREAM
    #endif
    var result: UnsafeMutablePointer<addrinfo>?
    guard (0...65535).contains(port), getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else {
        throw HTTPServerError.invalidAddress(host: host, port: port)
    }
    defer { freeaddrinfo(result) }

    var lastError = "no usable address"
    var candidate: UnsafeMutablePointer<addrinfo>? = first
    while let info = candidate {
        candidate = info.pointee.ai_next
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard fd >= 0 else { lastError = errnoDescription(); continue }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, listen(fd, backlog) == 0 else {
            lastError = errnoDescription()
            close(fd)
            continue
        }
        setNonBlocking(fd)
        return (fd, boundPort(fd) ?? port)
    }
    throw HTTPServerError.bindFailed(host: host, port: port, reason: lastError)
}

private func boundPort(_ fd: Int32) -> Int? {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let ok = withUnsafeMutablePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) == 0 }
    }
    guard ok else { return nil }
    switch Int32(storage.ss_family) {
    case AF_INET:
        return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) } }
    case AF_INET6:
        return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) } }
    default:
        return nil
    }
}

// MARK: - Connected sockets

func setNonBlocking(_ fd: Int32) {
    let flags = fcntl(fd, F_GETFL, 0)
    _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
}

/// Accepts one pending connection as a non-blocking, close-on-exec socket with `TCP_NODELAY`
/// (responses and stream events go out as soon as they are written), with the client's address.
/// Returns nil when none is pending (or on a transient error, which the next readiness event retries).
func acceptConnection(_ listener: Int32) -> (fd: Int32, peer: PeerAddress)? {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let fd = withUnsafeMutablePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listener, $0, &length) }
    }
    guard fd >= 0 else { return nil }
    setNonBlocking(fd)
    _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    #if canImport(Darwin)
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
    #endif
    return (fd, PeerAddress(storage))
}

/// `send` that never raises SIGPIPE on a closed peer.
func sendBytes(_ fd: Int32, _ pointer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return send(fd, pointer, count, Int32(MSG_NOSIGNAL))
    #else
    return send(fd, pointer, count, 0)
    #endif
}

/// Answers a connection over the limit with a canned 503 and closes it, without registering it.
/// Whatever the client already sent is read first so that the close is a FIN, not a reset that
/// could destroy the answer in flight.
func refuseConnection(_ fd: Int32, response: [UInt8]) {
    var scratch = [UInt8](repeating: 0, count: 4096)
    _ = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
    _ = response.withUnsafeBytes { sendBytes(fd, $0.baseAddress!, $0.count) }
    shutdown(fd, Int32(SHUT_WR))
    close(fd)
}

/// `close(2)`, under a name that methods called `close()` do not shadow.
func closeSocket(_ fd: Int32) {
    close(fd)
}

/// `shutdown(2)` both ways; on a listening socket, new connections are refused from then on.
func shutdownSocket(_ fd: Int32) {
    shutdown(fd, Int32(SHUT_RDWR))
}

/// Bytes received on the socket and not read yet (`FIONREAD`).
func bytesWaitingToBeRead(_ fd: Int32) -> Int {
    var count: Int32 = 0
    return ioctl(fd, UInt(FIONREAD), &count) == 0 ? Int(count) : 0
}

/// The text of a NUL-terminated C buffer.
func nulTerminatedString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Bytes handed to the kernel that the client's TCP has not acknowledged yet (`SIOCOUTQ`, which
/// Linux spells `TIOCOUTQ` for sockets; `SO_NWRITE` on Darwin). What was written minus this is
/// what the client took: the only honest progress measure, since the kernel wakes a writer only
/// once a third of a large send buffer is free.
func unacknowledgedBytes(_ fd: Int32) -> Int {
    var count: Int32 = 0
    #if canImport(Glibc)
    return ioctl(fd, UInt(TIOCOUTQ), &count) == 0 ? Int(count) : 0
    #else
    var length = socklen_t(MemoryLayout<Int32>.size)
    return getsockopt(fd, SOL_SOCKET, SO_NWRITE, &count, &length) == 0 ? Int(count) : 0
    #endif
}

/// A client's address: the per-client connection cap counts by `host`; the access log shows
/// `ip:port` (`[ip]:port` for IPv6).
struct PeerAddress: Sendable, CustomStringConvertible {
    var host: String
    var port: UInt16
    var isIPv6 = false

    var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    init(_ storage: sockaddr_storage) {
        var storage = storage
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        (host, port) = ("unknown", 0)
        switch Int32(storage.ss_family) {
        case AF_INET:
            withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                    var ip = address.pointee.sin_addr
                    if inet_ntop(AF_INET, &ip, &text, socklen_t(text.count)) != nil { host = nulTerminatedString(text) }
                    port = UInt16(bigEndian: address.pointee.sin_port)
                }
            }
        case AF_INET6:
            isIPv6 = true
            withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                    var ip = address.pointee.sin6_addr
                    if inet_ntop(AF_INET6, &ip, &text, socklen_t(text.count)) != nil { host = nulTerminatedString(text) }
                    port = UInt16(bigEndian: address.pointee.sin6_port)
                }
            }
        default:
            break
        }
    }
}
