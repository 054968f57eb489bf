import Foundation
import HTTPServer
import XCTest
@testable import InferenceAPI

/// A response's size is bounded before any work, and a large one is sent one choice at a time.
final class ResponseSizeTests: XCTestCase {
    /// n = 16, logprobs = 20 and echo on a long prompt would make a response of tens of megabytes out of
    /// a request of a few kilobytes: refused with a 400 that says why, before anything is generated.
    func testAmplifyingRequestIsRefusedBeforeGeneration() async throws {
        let backend = FakeBackend()
        let service = try await InferenceService.makeReady(backend: backend, contextLength: 4096)
        let prompt = String(repeating: "word ", count: 600)
        let answer = await service.send("POST", "/v1/completions", body: #"{"prompt":"\#(prompt)","max_tokens":1,"n":16,"logprobs":20,"echo":true}"#)
        XCTAssertEqual(answer.status, 400)
        XCTAssertEqual(answer.json["error"]?["code"]?.stringValue, "response_too_large")
        XCTAssertEqual(answer.json["error"]?["param"]?.stringValue, "echo")
        XCTAssertTrue(answer.json["error"]?["message"]?.stringValue?.contains("'stream'") ?? false)
        XCTAssertTrue(backend.submitted.isEmpty, "nothing was generated")
        // Streamed, nothing is held whole: the same request is served.
        let streamed = await service.send("POST", "/v1/completions", body: #"{"prompt":"\#(prompt)","max_tokens":1,"n":16,"logprobs":20,"echo":true,"stream":true}"#)
        XCTAssertEqual(streamed.status, 200)
    }

    func testLimitComesFromConfiguration() async throws {
        var configuration = APIConfiguration()
        configuration.limits.maxResponseBytes = 1 << 30
        let service = try await InferenceService.makeReady(configuration: configuration, contextLength: 4096)
        let prompt = String(repeating: "word ", count: 600)
        let answer = await service.send("POST", "/v1/completions", body: #"{"prompt":"\#(prompt)","max_tokens":1,"n":16,"logprobs":20,"echo":true}"#)
        XCTAssertEqual(answer.status, 200)
    }

    /// The pieces are the bytes of the whole object, whatever the number of elements.
    func testPiecesConcatenateToTheWholeEncoding() {
        for count in [0, 1, 3] {
            let elements: [JSONValue] = (0..<count).map { .object(["i": .int($0), "s": .string("x\"\($0)")]) }
            let prefix: JSONValue = .object(["id": "a", "choices": .array([]), "usage": .object(["n": .int(count)])])
            let pieces = JSONPieces(prefix: prefix, arrayKey: "choices", count: count) { elements[$0] }
            let whole: JSONValue = .object(["id": "a", "choices": .array(elements), "usage": .object(["n": .int(count)])])
            XCTAssertEqual(pieces.bytes, whole.encoded, "count \(count)")
            XCTAssertEqual(pieces.pieceCount, count + 2)
        }
    }

    /// Over the wire: a body estimated above the threshold is chunked, choice by choice, and reads as
    /// the same JSON a client would otherwise get.
    func testLargeBodyIsSentIncrementally() async throws {
        let running = try await RunningServer.start(for: self)
        let body = #"{"prompt":"Hello","max_tokens":500,"n":2,"logprobs":5,"temperature":0,"ignore_eos":true}"#
        let reply = try await running.client.send("POST", "/v1/completions", json: body)
        XCTAssertEqual(reply.status, 200, reply.text)
        XCTAssertEqual(reply.header("Transfer-Encoding"), "chunked")
        XCTAssertNil(reply.header("Content-Length"))
        let json = try JSONParser.parse(reply.body)
        let choices = try XCTUnwrap(json["choices"]?.arrayValue)
        XCTAssertEqual(choices.count, 2)
        XCTAssertEqual(choices[0]["text"], choices[1]["text"], "greedy choices agree")
        XCTAssertEqual(choices[0]["logprobs"]?["tokens"]?.arrayValue?.count, 500)
        XCTAssertEqual(json["usage"]?["completion_tokens"]?.intValue, 1000)
        let small = try await running.client.send("POST", "/v1/completions", json: #"{"prompt":"Hello","max_tokens":4}"#)
        XCTAssertNotNil(small.header("Content-Length"), "small bodies keep their length")
    }

    /// The task endpoints take the same limit: 200 float vectors would pass it, the same as base64 do not.
    func testEmbeddingsAnswerSizeIsBoundedBeforeTheForwardPasses() async throws {
        var limits = TaskLimits()
        limits.maxResponseBytes = 128 << 10
        let running = try await RunningServer.start(for: self, taskLimits: limits)
        let inputs = JSONValue.array(Array(repeating: .string("Hello there"), count: 200)).encodedString
        let refused = try await running.client.send("POST", "/v1/embeddings", json: #"{"input":\#(inputs)}"#)
        XCTAssertEqual(refused.status, 400, refused.text)
        XCTAssertEqual(try JSONParser.parse(refused.body)["error"]?["code"]?.stringValue, "response_too_large")
        let base64 = try await running.client.send("POST", "/v1/embeddings", json: #"{"input":\#(inputs),"encoding_format":"base64"}"#)
        XCTAssertEqual(base64.status, 200, base64.text)
        XCTAssertEqual(try JSONParser.parse(base64.body)["data"]?.arrayValue?.count, 200)
    }

    /// Embeddings above the incremental threshold arrive chunked and equal the vectors sent whole.
    func testLargeEmbeddingsAreSentIncrementally() async throws {
        let running = try await RunningServer.start(for: self)
        let inputs = JSONValue.array(Array(repeating: .string("Hello there"), count: 256)).encodedString
        let many = try await running.client.send("POST", "/v1/embeddings", json: #"{"input":\#(inputs)}"#)
        XCTAssertEqual(many.status, 200, many.text)
        XCTAssertEqual(many.header("Transfer-Encoding"), "chunked")
        let one = try await running.client.send("POST", "/v1/embeddings", json: #"{"input":"Hello there"}"#)
        XCTAssertNotNil(one.header("Content-Length"))
        let vectors = try XCTUnwrap(JSONParser.parse(many.body)["data"]?.arrayValue)
        XCTAssertEqual(vectors.count, 256)
        XCTAssertEqual(vectors[255]["index"]?.intValue, 255)
        XCTAssertEqual(vectors[255]["embedding"], try JSONParser.parse(one.body)["data"]?[0]?["embedding"])
    }

    /// Over the wire: the amplifying request is refused at once and the server is unharmed.
    func testAmplifyingRequestOverLoopback() async throws {
        let running = try await RunningServer.start(for: self) { $0.limits.maxResponseBytes = 1 << 20 }
        let prompt = String(repeating: "The quick brown fox. ", count: 80)
        let started = ContinuousClock.now
        let reply = try await running.client.send("POST", "/v1/completions", json: #"{"prompt":"\#(prompt)","max_tokens":100,"n":16,"logprobs":20,"echo":true}"#)
        XCTAssertEqual(reply.status, 400, reply.text)
        XCTAssertEqual(try JSONParser.parse(reply.body)["error"]?["code"]?.stringValue, "response_too_large")
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2), "refused before any generation")
        try await running.assertAlive()
    }
}
