import COpenSSL
import Foundation
import XCTest

// MARK: - Certificates made by the openssl command line

/// Runs a command from the PATH; returns its exit code and output.
@discardableResult
func runCommand(_ arguments: [String], timeout: TimeInterval = 30) throws -> (code: Int32, output: String, errors: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe(), errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Drained while it runs: a full pipe would block the command.
    let collected = [Box<Data>(), Box<Data>()]
    let readers = DispatchGroup()
    for (pipe, box) in zip([output, errors], collected) {
        DispatchQueue.global().async(group: readers) { box.value = pipe.fileHandleForReading.readDataToEndOfFile() }
    }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    readers.wait()
    let (out, err) = (collected[0].value ?? Data(), collected[1].value ?? Data())
    return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
}

/// A fresh directory removed when the test ends.
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
    return directory
}

/// A self-signed P-256 certificate for `localhost` and 127.0.0.1 with the subject `CN=commonName`,
/// written as `name.crt` and `name.key`.
func makeCertificate(in directory: URL, name: String, commonName: String) throws -> (certificate: String, key: String) {
    let certificate = directory.appendingPathComponent("\(name).crt").path
    let key = directory.appendingPathComponent("\(name).key").path
    let result = try runCommand([
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", certificate, "-days", "2", "-subj", "/CN=\(commonName)",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ])
    guard result.code == 0 else { throw TestClientError.malformed("openssl req failed: \(result.errors)") }
    return (certificate, key)
}

// MARK: - A blocking TLS client session

/// OpenSSL on the test client's blocking socket, trusting one CA file.
final class TLSClientSession {
    private let context: OpaquePointer
    private let ssl: OpaquePointer

    init(fd: Int32, trusting caFile: String) throws {
        context = SSL_CTX_new(TLS_client_method())!
        SSL_CTX_load_verify_locations(context, caFile, nil)
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        ssl = SSL_new(context)!
        SSL_set_fd(ssl, fd)
        guard SSL_connect(ssl) == 1 else {
            throw TestClientError.malformed("TLS handshake failed: \(openSSLErrorLine())")
        }
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(context)
    }

    var hasBufferedInput: Bool { SSL_pending(ssl) > 0 }

    /// The server certificate's subject, e.g. `/CN=old`.
    var peerSubject: String {
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return "" }
        defer { X509_free(certificate) }
        var buffer = [CChar](repeating: 0, count: 256)
        X509_NAME_oneline(X509_get_subject_name(certificate), &buffer, Int32(buffer.count))
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> Int {
        Int(SSL_write(ssl, bytes.baseAddress, Int32(bytes.count)))
    }

    func read(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
        Int(SSL_read(ssl, buffer.baseAddress, Int32(buffer.count)))
    }
}

private func openSSLErrorLine() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    ERR_error_string_n(ERR_get_error(), &buffer, buffer.count)
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension TestClient {
    /// Connects and completes a TLS handshake trusting `caFile`.
    static func tls(port: Int, trusting caFile: String, receiveBufferBytes: Int32? = nil) throws -> TestClient {
        let client = try TestClient(port: port, receiveBufferBytes: receiveBufferBytes)
        client.tls = try TLSClientSession(fd: client.fd, trusting: caFile)
        return client
    }
}
