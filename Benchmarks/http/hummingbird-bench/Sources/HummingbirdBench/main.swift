import Foundation
import Hummingbird

// MARK: - Minimal Hummingbird server
// Same endpoint as our `HTTPBenchServer`: `GET /` answers a 13-byte text body.
// Usage: HummingbirdBench [port]   (default 8081)

let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 8081 : 8081
let router = Router()
router.get("/") { _, _ -> String in
    "Hello, world!"
}
let app = Application(
    router: router,
    configuration: .init(address: .hostname("127.0.0.1", port: port))
)
try await app.runService()
