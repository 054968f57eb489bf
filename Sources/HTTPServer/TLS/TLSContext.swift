import COpenSSL
import Foundation

// MARK: - Configuration

/// Where the server's certificate and key are (PEM). The chain file holds the leaf certificate
/// first, then any intermediates.
public struct TLSConfiguration: Sendable, Equatable {
    public var certificateChainFile: String
    public var privateKeyFile: String

    public init(certificateChainFile: String, privateKeyFile: String) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
    }
}

// MARK: - Policy

/// The TLS policy, Mozilla's "intermediate" profile: TLS 1.2 and 1.3 only; ECDHE (or DHE) key
/// exchange with AEAD ciphers for 1.2 (1.3's suites are all AEAD), in the server's order (testssl
/// rates a client-chosen order as a finding); no compression, no renegotiation, no session
/// tickets (so no ticket key to rotate).
enum TLSPolicy {
    static let tls12Ciphers = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")
    static let tls13Suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    static let groups = "X25519:P-256:P-384"
    /// Application protocols offered through ALPN, most preferred first (as nginx and h2o: h2
    /// when the client speaks it).
    static let applicationProtocols = ["h2", "http/1.1"]
}

// MARK: - Context

/// An OpenSSL server context holding one certificate/key pair under `TLSPolicy`. Immutable once
/// made: a reload makes a new one, and connections keep the context they started with.
final class TLSContext: @unchecked Sendable {
    /// `SSL_CTX *`.
    let context: OpaquePointer

    init(_ configuration: TLSConfiguration) throws {
        for (role, path) in [("certificate", configuration.certificateChainFile), ("private key", configuration.privateKeyFile)] {
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw HTTPServerError.tls("cannot read the TLS \(role) file \(path)")
            }
        }
        guard let context = SSL_CTX_new(TLS_server_method()) else { throw HTTPServerError.tls("cannot create a TLS context: \(openSSLErrors())") }
        self.context = context
        SSL_CTX_set_options(context, copenssl_server_options())
        SSL_CTX_set_num_tickets(context, 0)
        _ = copenssl_ctx_set_session_cache_mode(context, Int(SSL_SESS_CACHE_OFF))
        _ = copenssl_ctx_set_mode(context, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS))
        guard copenssl_ctx_set_protocol_range(context, copenssl_version_tls12(), copenssl_version_tls13()) == 1,
              SSL_CTX_set_cipher_list(context, TLSPolicy.tls12Ciphers) == 1,
              SSL_CTX_set_ciphersuites(context, TLSPolicy.tls13Suites) == 1,
              copenssl_ctx_set_groups_list(context, TLSPolicy.groups) == 1
        else { throw HTTPServerError.tls("cannot apply the TLS policy: \(openSSLErrors())") }
        _ = copenssl_ctx_set_dh_auto(context, 1)
        SSL_CTX_set_alpn_select_cb(context, selectApplicationProtocol, nil)

        guard SSL_CTX_use_certificate_chain_file(context, configuration.certificateChainFile) == 1 else {
            throw HTTPServerError.tls("cannot load the TLS certificate chain \(configuration.certificateChainFile): \(openSSLErrors())")
        }
        // Loading the key checks it against the certificate: a mismatch is named as such.
        guard SSL_CTX_use_PrivateKey_file(context, configuration.privateKeyFile, SSL_FILETYPE_PEM) == 1,
              SSL_CTX_check_private_key(context) == 1
        else {
            let mismatch = ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH
            let reason = openSSLErrors()
            if mismatch {
                throw HTTPServerError.tls("the TLS private key \(configuration.privateKeyFile) does not match the certificate \(configuration.certificateChainFile)")
            }
            throw HTTPServerError.tls("cannot load the TLS private key \(configuration.privateKeyFile): \(reason)")
        }
    }

    deinit { SSL_CTX_free(context) }
}

/// The ALPN choice: our most preferred protocol the client offers. A client that offers only
/// protocols we do not speak is refused with `no_application_protocol` (RFC 7301 §3.2).
private func selectApplicationProtocol(
    _ ssl: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?, _ outLength: UnsafeMutablePointer<UInt8>?,
    _ offered: UnsafePointer<UInt8>?, _ offeredLength: UInt32, _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let offered, let out, let outLength else { return SSL_TLSEXT_ERR_ALERT_FATAL }
    let list = UnsafeBufferPointer(start: offered, count: Int(offeredLength))
    for wanted in TLSPolicy.applicationProtocols {
        var index = 0
        while index < list.count {
            let length = Int(list[index])
            let start = index + 1
            guard start + length <= list.count else { return SSL_TLSEXT_ERR_ALERT_FATAL }
            if length == wanted.utf8.count && list[start..<start + length].elementsEqual(wanted.utf8) {
                out.pointee = offered + start
                outLength.pointee = UInt8(length)
                return SSL_TLSEXT_ERR_OK
            }
            index = start + length
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL
}

/// OpenSSL's queued errors as one line (and the queue emptied).
func openSSLErrors() -> String {
    var messages: [String] = []
    while case let code = ERR_get_error(), code != 0 {
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        messages.append(nulTerminatedString(buffer))
    }
    return messages.isEmpty ? "unknown error" : messages.joined(separator: "; ")
}
