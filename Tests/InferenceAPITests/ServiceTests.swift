import Batcher
import HTTPServer
import XCTest
@testable import InferenceAPI

final class ServiceTests: XCTestCase {
    // MARK: Routing

    func testUnknownPathsAndWrongMethodsAnswerInOpenAIShape() async throws {
        let service = try await InferenceService.makeReady()
        let missing = await service.send("GET", "/v1/nothing")
        XCTAssertEqual(missing.status, 404)
        XCTAssertNotNil(missing.json["error"]?["message"]?.stringValue)
        let wrong = await service.send("GET", "/v1/completions")
        XCTAssertEqual(wrong.status, 405)
        XCTAssertEqual(wrong.headers["Allow"], "POST")
        let wrongGet = await service.send("DELETE", "/healthz")
        XCTAssertEqual(wrongGet.headers["Allow"], "GET, HEAD")
        // The service answers HEAD as GET; the HTTP server sends the head (with the GET's length) alone.
        let head = await service.send("HEAD", "/healthz")
        XCTAssertEqual(head.status, 200)
        let get = await service.send("GET", "/healthz")
        XCTAssertEqual(head.body, get.body)
    }

    // MARK: Health and readiness

    func testReadinessFollowsTheLifecycle() async throws {
        let service = InferenceService(configuration: APIConfiguration())
        var answer = await service.send("GET", "/readyz")
        XCTAssertEqual(answer.status, 503)
        XCTAssertEqual(answer.json["status"]?.stringValue, "loading")
        do { let value = await service.send("GET", "/healthz").status; XCTAssertEqual(value, 200) }
        do { let value = await service.send("POST", "/v1/completions", body: #"{"prompt":"x"}"#).status; XCTAssertEqual(value, 503) }
        let backend = FakeBackend()
        try await service.start(with: ServingContext(backend: backend, tokenizer: ByteTokenizer(), model: ModelDescription(id: "m", contextLength: 64)))
        XCTAssertEqual(backend.submitted.count, 1, "warm-up ran one generation")
        XCTAssertEqual(backend.submitted.first?.parameters.maxTokens, 1)
        answer = await service.send("GET", "/readyz")
        XCTAssertEqual(answer.status, 200)
        service.beginDraining()
        answer = await service.send("GET", "/readyz")
        XCTAssertEqual(answer.status, 503)
        XCTAssertEqual(answer.json["status"]?.stringValue, "draining")
        let refused = await service.send("POST", "/v1/completions", body: #"{"prompt":"x"}"#)
        XCTAssertEqual(refused.status, 503)
        XCTAssertEqual(refused.headers["Retry-After"], "1")
        do { let value = await service.send("GET", "/healthz").status; XCTAssertEqual(value, 200) }
    }

    func testAFailedWarmUpIsReported() async throws {
        let backend = FakeBackend()
        backend.submitError = BatcherError.invalidRequest("broken")
        let service = InferenceService(configuration: APIConfiguration())
        do {
            try await service.start(with: ServingContext(backend: backend, tokenizer: ByteTokenizer(), model: ModelDescription(id: "m", contextLength: 64)))
            XCTFail("warm-up should fail")
        } catch {
            XCTAssertTrue("\(error)".contains("warm-up"), "\(error)")
        }
        do { let value = await service.send("GET", "/readyz").status; XCTAssertEqual(value, 503) }
    }

    // MARK: API keys

    func testKeysGuardV1ButNotHealth() async throws {
        var configuration = APIConfiguration()
        configuration.apiKeys = ["k1", "secret-2"]
        let service = try await InferenceService.makeReady(configuration: configuration)
        let none = await service.send("GET", "/v1/models")
        XCTAssertEqual(none.status, 401)
        XCTAssertEqual(none.errorCode, "invalid_api_key")
        do { let value = await service.send("GET", "/v1/models", headers: ["Authorization": "Bearer wrong"]).status; XCTAssertEqual(value, 401) }
        do { let value = await service.send("GET", "/v1/models", headers: ["Authorization": "Bearer secret-"]).status; XCTAssertEqual(value, 401) }
        do { let value = await service.send("GET", "/v1/models", headers: ["Authorization": "Basic secret-2"]).status; XCTAssertEqual(value, 401) }
        do { let value = await service.send("GET", "/v1/models", headers: ["Authorization": "Bearer secret-2"]).status; XCTAssertEqual(value, 200) }
        do { let value = await service.send("GET", "/v1/models", headers: ["authorization": "bearer k1"]).status; XCTAssertEqual(value, 200) }
        do { let value = await service.send("GET", "/v1/unknown").status; XCTAssertEqual(value, 401, "no probing of /v1 without a key") }
        do { let value = await service.send("GET", "/healthz").status; XCTAssertEqual(value, 200) }
        do { let value = await service.send("GET", "/readyz").status; XCTAssertEqual(value, 200) }
        do { let value = await service.send("GET", "/metrics").status; XCTAssertEqual(value, 200) }
    }

    func testMetricsCanBePutBehindTheKey() async throws {
        var configuration = APIConfiguration()
        configuration.apiKeys = ["k"]
        configuration.metricsRequireKey = true
        let service = try await InferenceService.makeReady(configuration: configuration)
        do { let value = await service.send("GET", "/metrics").status; XCTAssertEqual(value, 401) }
        do { let value = await service.send("GET", "/metrics", headers: ["Authorization": "Bearer k"]).status; XCTAssertEqual(value, 200) }
    }

    func testConstantTimeEquals() {
        XCTAssertTrue(constantTimeEquals(Array("abc".utf8), Array("abc".utf8)))
        XCTAssertFalse(constantTimeEquals(Array("abc".utf8), Array("abd".utf8)))
        XCTAssertFalse(constantTimeEquals(Array("abc".utf8), Array("ab".utf8)))
        XCTAssertFalse(constantTimeEquals([], Array("a".utf8)))
        XCTAssertFalse(constantTimeEquals(Array("ab\0".utf8), Array("ab".utf8)))
    }

    // MARK: Models and tokenizer endpoints

    func testModelsList() async throws {
        let service = try await InferenceService.makeReady()
        let answer = await service.send("GET", "/v1/models")
        XCTAssertEqual(answer.json["object"]?.stringValue, "list")
        XCTAssertEqual(answer.json["data"]?[0]?["id"]?.stringValue, "tiny")
        XCTAssertEqual(answer.json["data"]?[0]?["object"]?.stringValue, "model")
        XCTAssertEqual(answer.json["data"]?[0]?["max_model_len"]?.intValue, 64)
        do { let value = await service.send("GET", "/v1/models/tiny").json["id"]?.stringValue; XCTAssertEqual(value, "tiny") }
        do { let value = await service.send("GET", "/v1/models/other").status; XCTAssertEqual(value, 404) }
    }

    func testTokenizeAndDetokenize() async throws {
        let service = try await InferenceService.makeReady()
        let tokenized = await service.send("POST", "/v1/tokenize", body: #"{"prompt":"Hi<|endoftext|>"}"#)
        XCTAssertEqual(tokenized.status, 200, tokenized.text)
        XCTAssertEqual(tokenized.json["tokens"], .array([.int(72), .int(105), .int(256)]))
        XCTAssertEqual(tokenized.json["count"]?.intValue, 3)
        XCTAssertEqual(tokenized.json["max_model_len"]?.intValue, 64)
        let detokenized = await service.send("POST", "/v1/detokenize", body: #"{"tokens":[72,105]}"#)
        XCTAssertEqual(detokenized.json["prompt"]?.stringValue, "Hi")
        let bad = await service.send("POST", "/v1/detokenize", body: #"{"tokens":[72,1000]}"#)
        XCTAssertEqual(bad.status, 400)
        XCTAssertEqual(bad.errorParam, "tokens")
        do { let value = await service.send("POST", "/v1/tokenize", body: #"{"prompt":5}"#).errorParam; XCTAssertEqual(value, "prompt") }
        do { let value = await service.send("POST", "/v1/tokenize", body: #"{}"#).errorParam; XCTAssertEqual(value, "prompt") }
        do { let value = await service.send("POST", "/v1/detokenize", body: #"{"tokens":"x"}"#).errorParam; XCTAssertEqual(value, "tokens") }
    }

    // MARK: Metrics

    func testMetricsCountRequestsAndTokens() async throws {
        let service = try await InferenceService.makeReady()
        _ = await service.complete(#"{"prompt":"ab","max_tokens":3}"#)
        _ = await service.complete(#"{"prompt":"ab","max_tokens":2,"stream":true}"#)
        _ = await service.complete(#"{"prompt":""}"#)
        _ = await service.send("GET", "/nope")
        let text = await service.send("GET", "/metrics").text
        for line in [
            #"gptneo_http_requests_total{endpoint="/v1/completions",method="POST",status="200"} 2"#,
            #"gptneo_http_requests_total{endpoint="/v1/completions",method="POST",status="400"} 1"#,
            #"gptneo_http_requests_total{endpoint="other",method="GET",status="404"} 1"#,
            "gptneo_prompt_tokens_total 4",
            "gptneo_generation_tokens_total 5",
            "gptneo_time_to_first_token_seconds_count 2",
            "gptneo_inter_token_latency_seconds_count 3",
            #"gptneo_http_request_duration_seconds_bucket{endpoint="/v1/completions",le="+Inf"} 3"#,
            "gptneo_queued_requests 2",
            "gptneo_running_sequences 3",
            "gptneo_kv_cache_usage_ratio 0.25",
            "gptneo_ready 1",
            "# TYPE gptneo_time_to_first_token_seconds histogram",
            "# TYPE gptneo_http_requests_total counter",
        ] {
            XCTAssertTrue(text.contains(line + "\n"), "missing: \(line)\n\(text)")
        }
        XCTAssertTrue(text.contains("process_resident_memory_bytes "))
        XCTAssertFalse(text.contains("process_resident_memory_bytes 0\n"), "RSS is read from /proc")
    }

    /// Every route the router serves is in /openapi.json with its method, POST routes with a request
    /// schema; every schema reference resolves; and the document names no route that does not exist.
    func testOpenAPIDocumentIsServedAndDescribesEveryRoute() async throws {
        let service = try await InferenceService.makeReady()
        let answer = await service.send("GET", "/openapi.json")
        XCTAssertEqual(answer.status, 200)
        let document = answer.json
        XCTAssertEqual(document["openapi"]?.stringValue, "3.1.0")
        guard case .object(let paths)? = document["paths"] else { return XCTFail("no paths: \(answer.text.prefix(200))") }
        let routes = service.makeRouter().routes
        XCTAssertGreaterThan(routes.count, 10)
        var documented = Set<String>()
        for (path, item) in paths.entries {
            guard case .object(let operations) = item else { XCTFail(path); continue }
            for method in operations.keys { documented.insert("\(method.uppercased()) \(path)") }
        }
        let served = Set(routes.map { "\($0.method) \($0.pattern.replacingOccurrences(of: "...}", with: "}"))" })
        XCTAssertEqual(documented, served, "documented but not served: \(documented.subtracting(served)); served but not documented: \(served.subtracting(documented))")
        for route in routes {
            let path = route.pattern.replacingOccurrences(of: "...}", with: "}")
            let operation = paths[path]?[route.method.lowercased()]
            XCTAssertNotNil(operation?["responses"]?["200"], "\(route.method) \(path) documents its answer")
            if route.method == "POST" {
                XCTAssertNotNil(operation?["requestBody"]?["content"]?["application/json"]?["schema"], "\(route.method) \(path) documents its body")
            }
            for parameter in path.split(separator: "/").filter({ $0.hasPrefix("{") }) {
                let names = operation?["parameters"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
                XCTAssertTrue(names.contains(String(parameter.dropFirst().dropLast())), "\(path) documents \(parameter)")
            }
        }
        var unresolved: [String] = []
        func visit(_ value: JSONValue) {
            switch value {
            case .object(let object):
                if let reference = object["$ref"]?.stringValue {
                    let parts = reference.split(separator: "/").dropFirst().map(String.init)
                    if parts.reduce(Optional(document), { $0?[$1] }) == nil { unresolved.append(reference) }
                }
                object.entries.forEach { visit($0.value) }
            case .array(let array): array.forEach(visit)
            default: break
            }
        }
        visit(document)
        XCTAssertEqual(unresolved, [])
    }
}
