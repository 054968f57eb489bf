import Foundation
import HTTPServer
import Logging
import XCTest
@testable import InferenceAPI

/// The real stack on a loopback port: HTTPServer → InferenceService → Batcher → engine on the committed
/// tiny checkpoint, with the fixture task heads (Tests/Fixtures/heads) so that every endpoint answers.
struct RunningServer {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    var server: HTTPServer
    var service: InferenceService
    var client: LoopbackClient

    /// Starts a server shut down when `test` ends.
    static func start(for test: XCTestCase, apiKeys: [String] = [], maxBodyBytes: Int = 1 << 20, taskLimits: TaskLimits = .init(),
                      configure: (inout APIConfiguration) -> Void = { _ in }) async throws -> RunningServer {
        // The checkpoint the expected values were computed from.
        let directory = root.appendingPathComponent("Tests/Fixtures/tiny-gpt-neo")
        var api = APIConfiguration()
        api.apiKeys = apiKeys
        configure(&api)
        let service = InferenceService(configuration: api)
        var http = HTTPServerConfiguration()
        http.port = 0
        http.maxBodyBytes = maxBodyBytes
        http.accessLogLevel = .trace
        http.makeErrorResponse = { InferenceService.errorResponse(status: $0, message: $1) }
        http.onServerAnswer = { service.metrics.countServerAnswer($0) }
        var logger = Logger(label: "loopback")
        logger.logLevel = .warning
        let server = HTTPServer(configuration: http, logger: logger, handler: { await service.handle($0) })
        let port = try server.start()
        let heads = root.appendingPathComponent("Tests/Fixtures/heads/heads.json")
        try await service.start(with: try ServingContext.load(directory: directory, tasks: TaskOptions(headsConfiguration: heads, limits: taskLimits)))
        test.addTeardownBlock { await server.shutdown() }
        return RunningServer(server: server, service: service, client: LoopbackClient(port: port))
    }

    /// Fails the test unless the server still answers its probes and a small completion.
    func assertAlive(file: StaticString = #filePath, line: UInt = #line) async throws {
        let health = try await client.send("GET", "/healthz")
        XCTAssertEqual(health.status, 200, file: file, line: line)
        let completion = try await client.send("POST", "/v1/completions", json: #"{"prompt":"Hello","max_tokens":2}"#)
        XCTAssertEqual(completion.status, 200, completion.text, file: file, line: line)
    }
}

/// The process's resident memory in bytes (Linux), for bounds on what a request may cost.
func residentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return 0 }
    return kib * 1024
}
