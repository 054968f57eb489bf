import Foundation
import HTTPServer
import Logging
import XCTest
@testable import InferenceAPI

/// The real serving stack on a loopback port: HTTPServer → InferenceService → Batcher → engine on a
/// checkpoint directory. Shut down when the test that started it ends.
struct LoopbackStack {
    var server: HTTPServer
    var service: InferenceService
    var client: LoopbackClient

    static func start(model directory: URL, test: XCTestCase, apiKeys: [String] = [],
                      maxBodyBytes: Int = 1 << 20) async throws -> LoopbackStack {
        var api = APIConfiguration()
        api.apiKeys = apiKeys
        let service = InferenceService(configuration: api)
        var http = HTTPServerConfiguration()
        http.port = 0
        http.maxBodyBytes = maxBodyBytes
        http.accessLogLevel = .trace
        http.makeErrorResponse = { service.serverErrorResponse(status: $0, message: $1) }
        var logger = Logger(label: "loopback")
        logger.logLevel = .warning
        let server = HTTPServer(configuration: http, logger: logger, handler: { await service.handle($0) })
        let port = try server.start()
        try await service.start(with: try ServingContext.load(directory: directory))
        test.addTeardownBlock { await server.shutdown() }
        return LoopbackStack(server: server, service: service, client: LoopbackClient(port: port))
    }
}
