import HTTPServer
import Logging

// MARK: - Trivial-endpoint server for the wrk benchmark
// `GET /` (and `/healthz`, for the h2load comparison) answers a 13-byte text body, like the Hummingbird yardstick in `hummingbird-bench/`.
// Usage: HTTPBenchServer [port] [--access-log] [--tls-cert FILE --tls-key FILE]
// (default port 8080; access log off; plain HTTP unless both TLS files are given)

let arguments = Array(CommandLine.arguments.dropFirst())
func value(after flag: String) -> String? {
    arguments.firstIndex(of: flag).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
}
var configuration = HTTPServerConfiguration()
configuration.port = arguments.first.flatMap { Int($0) } ?? 8080
configuration.shutdownGracePeriod = .seconds(2)
if let certificate = value(after: "--tls-cert"), let key = value(after: "--tls-key") {
    configuration.tls = TLSConfiguration(certificateChainFile: certificate, privateKeyFile: key)
}
var logger = Logger(label: "bench")
logger.logLevel = arguments.contains("--access-log") ? .info : .warning

let hello = Array("Hello, world!".utf8)
var router = HTTPRouter()
for path in ["/", "/healthz"] {
    router.add("GET", path) { _ in
        HTTPResponse(status: 200, headers: ["Content-Type": "text/plain; charset=utf-8"], body: .bytes(hello))
    }
}
let server = HTTPServer(configuration: configuration, logger: logger, handler: router.handler())
let port = try server.start()
print("HTTPBenchServer listening on 127.0.0.1:\(port)")
_ = await server.runUntilSignalled()
