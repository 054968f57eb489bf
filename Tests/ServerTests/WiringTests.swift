import Foundation
import InferenceAPI
import Logging
import XCTest
@testable import gptneo_server

/// Each setting reaches the component it configures; API key files; the log handler's formats.
final class WiringTests: XCTestCase {
    /// Settings the lifecycle reads straight from `ServerOptions` (model loading, logging set-up,
    /// drain timing, key files); the process tests exercise those.
    private let readByTheLifecycle: Set<String> = [
        "model.path", "model.revision", "model.name", "model.heads", "model.embedding_pooling", "model.normalize_embeddings",
        "auth.api_keys", "auth.api_keys_file", "logging.level", "logging.format", "shutdown.drain_delay_seconds",
    ]

    /// What the HTTP server, the batcher and the API layer are configured with.
    private func components(_ options: ServerOptions) -> String {
        let server = InferenceServer(options: options, modelDirectory: URL(fileURLWithPath: "/m"), apiKeys: [], logger: Logger(label: "test"))
        let http = InferenceServer.httpConfiguration(options)
        let api = server.service.configuration
        return "\(http.host) \(http.port) \(String(describing: http.tls)) \(http.maxConnections) \(http.maxConnectionsPerClient) \(http.maxConcurrentStreams) "
            + "\(http.maxBodyBytes) \(http.maxHeaderBytes) \(http.firstByteTimeout) \(http.headTimeout) \(http.bodyTimeout) "
            + "\(http.idleTimeout) \(http.writeTimeout) \(http.minSendBytes) \(http.shutdownGracePeriod) \(http.accessLogLevel) | "
            + "\(server.batcherConfiguration) \(server.weightSettings) | \(api.metricsRequireKey) \(api.limits.generation.maxChoices) \(api.limits.maxTotalChoices) "
            + "\(api.limits.maxResponseBytes)"
    }

    func testEverySettingTakesEffect() throws {
        let baseline = components(ServerOptions())
        for setting in SettingsTable.all where !readByTheLifecycle.contains(setting.key) {
            var options = ServerOptions()
            let value: String = switch setting.kind {
            case .integer(let range): String(range.upperBound)
            case .seconds(let range): formatNumber(range.upperBound)
            case .boolean: "true"
            case .choice(let choices): choices.first { SettingValue.text($0) != setting.defaultValue }!
            default: "example"
            }
            setting.assign(&options, try setting.parse(value, source: .defaultValue))
            if let companion = SettingsTests.companions[setting.key].flatMap(SettingsTable.setting(key:)) {
                companion.assign(&options, try companion.parse("example", source: .defaultValue))
            }
            XCTAssertNotEqual(components(options), baseline, "\(setting.key) changes no component's configuration")
        }
    }

    // MARK: API key files

    func testKeyFileLinesAndKeyDirectories() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("keys.txt")
        try "# clients\nalpha\n\n  beta  \nalpha\n".write(to: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(try APIKeyFile(path: file.path).read(), ["alpha", "beta"])

        try "gamma\n".write(to: directory.appendingPathComponent("z-client"), atomically: true, encoding: .utf8)
        try "hidden\n".write(to: directory.appendingPathComponent(".hidden"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("nested"), withIntermediateDirectories: true)
        XCTAssertEqual(try APIKeyFile(path: directory.path).read(), ["alpha", "beta", "gamma"])

        let empty = directory.appendingPathComponent("nested/empty")
        try "# none yet\n".write(to: empty, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try APIKeyFile(path: empty.path).read()) { XCTAssertEqual("\($0)", "\(empty.path) holds no API keys") }
        XCTAssertThrowsError(try APIKeyFile(path: "/no/such/keys").read())

        var options = ServerOptions()
        options.apiKeys = ["beta", "delta"]
        options.apiKeysFile = file.path
        XCTAssertEqual(try options.effectiveAPIKeys(), ["beta", "delta", "alpha"])
    }

    // MARK: Log lines

    private final class Lines: @unchecked Sendable {
        let lock = NSLock()
        var lines: [String] = []
        func append(_ line: String) { lock.withLock { lines.append(line) } }
    }

    func testLogTimestampsAreISO8601InUTCWithMilliseconds() throws {
        XCTAssertEqual(ServerLogHandler.utcTimestamp(timespec(tv_sec: 0, tv_nsec: 0)), "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(ServerLogHandler.utcTimestamp(timespec(tv_sec: 1_796_131_569, tv_nsec: 906_999_999)), "2026-12-01T13:26:09.906Z")
        XCTAssertEqual(ServerLogHandler.utcTimestamp(timespec(tv_sec: 253_402_300_799, tv_nsec: 5_000_000)), "9999-12-31T23:59:59.005Z")
        // Foundation's parser reads it back as the same instant (to the millisecond).
        let now = ServerLogHandler.currentTime()
        let parsed = try Date(ServerLogHandler.utcTimestamp(now), strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true))
        XCTAssertEqual(parsed.timeIntervalSince1970, Double(now.tv_sec) + Double(now.tv_nsec / 1_000_000) / 1000, accuracy: 1e-6)
    }

    func testJSONLogLinesCarryTimeLevelMessageAndTheAccessLogFields() throws {
        let lines = Lines()
        let control = LogControl(level: .info, format: .json, write: { lines.append($0) })
        let logger = Logger(label: "gptneo-server") { ServerLogHandler(label: $0, control: control) }
        logger.info("GET /v1/models 200", metadata: ["request_id": "abc", "status": "200", "duration_ms": "0.5"])
        logger.debug("not written at info")
        XCTAssertEqual(lines.lines.count, 1)
        let line = try XCTUnwrap(lines.lines.first)
        XCTAssertTrue(line.hasSuffix("}\n") && !line.dropLast().contains("\n"), line)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        XCTAssertEqual(object["level"], "info")
        XCTAssertEqual(object["message"], "GET /v1/models 200")
        XCTAssertEqual(object["request_id"], "abc")
        XCTAssertEqual(object["status"], "200")
        XCTAssertEqual(object["logger"], "gptneo-server")
        XCTAssertNotNil(object["time"].flatMap { try? Date($0, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true)) }, line)
    }

    func testLevelChangesApplyToExistingLoggersAndSecretsAreRedacted() {
        let lines = Lines()
        let control = LogControl(level: .warning, format: .text, write: { lines.append($0) })
        let logger = Logger(label: "test") { ServerLogHandler(label: $0, control: control) }
        control.setSecrets(["sk-short", "sk-short-and-longer"])
        logger.info("dropped")
        control.level = .info
        logger.info("key sk-short-and-longer and sk-short", metadata: ["path": "/v1/models?key=sk-short"])
        XCTAssertEqual(lines.lines.count, 1)
        XCTAssertTrue(lines.lines[0].contains("test: key <redacted> and <redacted> path=/v1/models?key=<redacted>"), lines.lines[0])
    }
}
