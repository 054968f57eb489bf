import Foundation
import XCTest

/// The whole process: drain on SIGTERM, key rotation and log level while running, secrets kept out
/// of every log line. Runs the built `gptneo-server` on the bundled tiny model.
final class ProcessLifecycleTests: XCTestCase {
    private func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gptneo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        return directory
    }

    // MARK: Drain

    func testSIGTERMDrainsStreamsInFlightAndExitsZero() throws {
        let server = try ServerProcess(arguments: ["--drain-delay-seconds", "1.5", "--shutdown-grace-seconds", "60"])
        try server.waitUntilReady()
        let output = try temporaryDirectory().appendingPathComponent("stream.txt")
        // As long a stream as the tiny model's 512 positions allow, so that it is still in flight at SIGTERM:
        // curl's --limit-rate holds the reader back little (7.88 read 77 kB at "8 kB/s" in 1.8 s), so the
        // stream lasts about as long as its generation, and 300 tokens once ended before the check below.
        let stream = try server.startSlowStream(
            json: #"{"prompt": "Hello", "max_tokens": 500, "ignore_eos": true, "temperature": 0, "stream": true, "stream_options": {"include_usage": true}}"#,
            bytesPerSecond: 15_000, output: output)
        defer { if stream.isRunning { stream.terminate() } }
        try server.waitFor("the first streamed event", timeout: 30) {
            ((try? String(contentsOf: output, encoding: .utf8)) ?? "").contains("data: {")
        }

        server.signal(SIGTERM)
        // Readiness turns 503 at once and new completions are refused, while the listener is still open.
        try server.waitFor("/readyz to answer 503", timeout: 1) { server.request("/readyz").status == 503 }
        XCTAssertEqual(server.request("/v1/completions", method: "POST", json: #"{"prompt": "x", "max_tokens": 1}"#).status, 503)
        XCTAssertFalse(((try? String(contentsOf: output, encoding: .utf8)) ?? "").contains("[DONE]"), "the stream finished before SIGTERM: the test proves nothing")

        stream.waitUntilExit()
        let streamed = try String(contentsOf: output, encoding: .utf8)
        XCTAssertTrue(streamed.hasSuffix("data: [DONE]\n\n"), "stream cut short: …\(streamed.suffix(300))")
        XCTAssertTrue(streamed.contains(#""completion_tokens":500"#), "usage missing or short: …\(streamed.suffix(300))")
        XCTAssertEqual(server.waitForExit(timeout: 30), 0, server.log)
        XCTAssertTrue(server.log.contains("drained: exiting"), server.log)
    }

    func testSIGTERMWhileLoadingExitsZero() throws {
        let server = try ServerProcess(arguments: ["--log-level", "info"])
        try server.waitForLog(#/loading the model from/#, timeout: 30)
        server.signal(SIGTERM)
        XCTAssertEqual(server.waitForExit(timeout: 30), 0, server.log)
        // Either the load was abandoned or (on a fast machine) warm-up had begun and the server drained.
        XCTAssertTrue(server.log.contains("shutdown requested while loading") || server.log.contains("drained: exiting"), server.log)
    }

    func testLoadingLineNamesTheThreadCountAndReadyLineTheTimes() throws {
        let chosen = try ServerProcess(arguments: ["--log-level", "info", "--threads", "3"])
        try chosen.waitForLog(#/loading the model from .* threads=3\n/#, timeout: 30)
        chosen.signal(SIGTERM)
        XCTAssertEqual(chosen.waitForExit(timeout: 30), 0, chosen.log)

        let defaulted = try ServerProcess(arguments: ["--log-level", "info"])
        try defaulted.waitForLog(#/loading the model from .* threads=\d+ \(the CPUs this process may use\)/#, timeout: 30)
        // The ready line says how long the load and the warm-up took.
        let ready = try defaulted.waitForLog(#/ready: serving .* load_seconds=(\d+\.\d{3}) warm_up_seconds=(\d+\.\d{3})\n/#, timeout: 30)
        XCTAssertGreaterThan(Double(ready.1)!, 0)
        XCTAssertLessThan(Double(ready.1)! + Double(ready.2)!, 30)
        defaulted.signal(SIGTERM)
        XCTAssertEqual(defaulted.waitForExit(timeout: 30), 0, defaulted.log)
    }

    // MARK: Key rotation

    /// As the kubelet updates a mounted Secret: the files are symlinks into `..data`, itself a
    /// symlink to a timestamped directory that is swapped atomically.
    func testRotatedSecretDirectoryIsPickedUpWithoutRestart() throws {
        let keys = try temporaryDirectory()
        func publish(_ version: String, key: String) throws {
            let payload = keys.appendingPathComponent("..\(version)")
            try FileManager.default.createDirectory(at: payload, withIntermediateDirectories: true)
            try key.write(to: payload.appendingPathComponent("client-a"), atomically: true, encoding: .utf8)
            let staged = keys.appendingPathComponent("..data_tmp")
            try FileManager.default.createSymbolicLink(atPath: staged.path, withDestinationPath: "..\(version)")
            XCTAssertEqual(rename(staged.path, keys.appendingPathComponent("..data").path), 0)
        }
        try publish("v1", key: "first-key-0123456789")
        try FileManager.default.createSymbolicLink(atPath: keys.appendingPathComponent("client-a").path, withDestinationPath: "..data/client-a")

        let server = try ServerProcess(arguments: ["--api-keys-file", keys.path])
        try server.waitUntilReady()
        let pid = server.process.processIdentifier
        XCTAssertEqual(server.request("/v1/models", key: "first-key-0123456789").status, 200)
        XCTAssertEqual(server.request("/v1/models", key: "second-key-9876543210").status, 401)

        try publish("v2", key: "second-key-9876543210\n")
        try server.waitFor("the rotated key to be accepted", timeout: 10) {
            server.request("/v1/models", key: "second-key-9876543210").status == 200
        }
        XCTAssertEqual(server.request("/v1/models", key: "first-key-0123456789").status, 401)
        XCTAssertEqual(server.process.processIdentifier, pid)
        XCTAssertTrue(server.process.isRunning)

        // A key file that loses its keys keeps the current ones: authentication never turns off.
        try publish("v3", key: "\n")
        try server.waitForLog(#/settings not reloaded/#, timeout: 10)
        XCTAssertEqual(server.request("/v1/models").status, 401)
        XCTAssertEqual(server.request("/v1/models", key: "second-key-9876543210").status, 200)
        server.signal(SIGTERM)
        XCTAssertEqual(server.waitForExit(timeout: 30), 0)
    }

    func testSIGHUPRereadsTheLogLevelFromTheConfigFile() throws {
        let config = try temporaryDirectory().appendingPathComponent("gptneo-server.yaml")
        try "logging:\n  level: warning\n".write(to: config, atomically: true, encoding: .utf8)
        let server = try ServerProcess(arguments: ["--config", config.path, "--shutdown-grace-seconds", "5"])
        try server.waitUntilReady()
        XCTAssertEqual(server.request("/v1/models").status, 200)
        XCTAssertFalse(server.log.contains("GET /v1/models 200"), "access log written at level warning:\n\(server.log)")

        try "logging:\n  level: info\n".write(to: config, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        try server.waitForLog(#/settings reloaded: logging.level warning -> info/#, timeout: 10)
        XCTAssertEqual(server.request("/v1/models").status, 200)
        try server.waitForLog(#/GET \/v1\/models 200/#, timeout: 5)
        server.signal(SIGTERM)
        XCTAssertEqual(server.waitForExit(timeout: 30), 0)
    }

    // MARK: Secrets

    func testSecretsNeverReachTheLogOrCheckConfig() throws {
        let directory = try temporaryDirectory()
        let keyFile = directory.appendingPathComponent("keys")
        try "# rotated monthly\nfile-secret-BBBB-1234\n".write(to: keyFile, atomically: true, encoding: .utf8)
        let secrets = ["env-secret-AAAA-1234", "file-secret-BBBB-1234", "env-secret-CCCC-1234"]
        let arguments = ["--api-keys-file", keyFile.path, "--log-level", "trace"]
        let environment = ["GPTNEO_API_KEYS": "\(secrets[0]),\(secrets[2])"]

        for format in ["text", "json"] {
            let server = try ServerProcess(arguments: arguments + ["--log-format", format], environment: environment)
            try server.waitUntilReady()
            for secret in secrets { XCTAssertEqual(server.request("/v1/models", key: secret).status, 200) }
            XCTAssertEqual(server.request("/v1/models", key: "wrong-" + secrets[0]).status, 401)
            // A client that puts a key in the URL: the access log writes the path, never the query.
            XCTAssertEqual(server.request("/v1/models?api_key=\(secrets[1])").status, 401)
            // A rotation is logged (the key count), the keys are not.
            try "\(secrets[1])\nfile-secret-DDDD-1234\n".write(to: keyFile, atomically: true, encoding: .utf8)
            server.signal(SIGHUP)
            try server.waitForLog(#/API keys \(4 now\)/#, timeout: 10)
            server.signal(SIGTERM)
            XCTAssertEqual(server.waitForExit(timeout: 30), 0)
            let log = server.log
            for secret in secrets + ["file-secret-DDDD-1234"] { XCTAssertFalse(log.contains(secret), "\(format) log shows \(secret):\n\(log)") }
            XCTAssertTrue(log.contains("GET /v1/models 401"), "trace-level access log missing:\n\(log)")
            try "# rotated monthly\n\(secrets[1])\n".write(to: keyFile, atomically: true, encoding: .utf8)
        }

        var childEnvironment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("GPTNEO_") }
        childEnvironment.merge(environment) { $1 }
        let report = ServerProcess.run(ServerProcess.executable.path, arguments + ["--check-config"], environment: childEnvironment)
        for secret in secrets { XCTAssertFalse(report.contains(secret), "--check-config shows \(secret):\n\(report)") }
        XCTAssertTrue(report.contains("auth.api_keys                        = [2 x <redacted>]  (environment GPTNEO_API_KEYS)"), report)
        XCTAssertTrue(report.contains("# auth.api_keys_file holds 1 key(s)"), report)
    }
}
