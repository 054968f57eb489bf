import Foundation
import HTTPServer
import Logging
import XCTest
@testable import InferenceAPI

/// The real stack over loopback: HTTPServer → InferenceService → Batcher → engine on the committed
/// tiny checkpoint. Expected values come from transformers (`Tests/Fixtures/batcher/expected.json`,
/// written by `scripts/fixtures/generate_batcher_fixtures.py`).
final class EndToEndTests: XCTestCase {
    static let root = RunningServer.root

    private func startServer(apiKeys: [String] = [], maxBodyBytes: Int = 1 << 20) async throws -> RunningServer {
        try await RunningServer.start(for: self, apiKeys: apiKeys, maxBodyBytes: maxBodyBytes)
    }

    private func reference() throws -> JSONValue {
        let data = try Data(contentsOf: Self.root.appendingPathComponent("Tests/Fixtures/batcher/expected.json"))
        return try JSONParser.parse(Array(data))
    }

    // MARK: Numbers match transformers

    func testGreedyCompletionsMatchTransformers() async throws {
        let running = try await startServer()
        let generations = try XCTUnwrap(reference()["generations"]?.arrayValue)
        XCTAssertFalse(generations.isEmpty)
        for (i, generation) in generations.enumerated() {
            let prompt = try XCTUnwrap(generation["prompt"]).encodedString
            let maxTokens = try XCTUnwrap(generation["max_tokens"]?.intValue)
            let penalty = try XCTUnwrap(generation["repetition_penalty"]?.doubleValue)
            let body = #"{"prompt":\#(prompt),"max_tokens":\#(maxTokens),"temperature":0,"repetition_penalty":\#(penalty),"logprobs":1}"#
            let reply = try await running.client.send("POST", "/v1/completions", json: body)
            XCTAssertEqual(reply.status, 200, reply.text)
            let json = try JSONParser.parse(reply.body)
            let choice = try XCTUnwrap(json["choices"]?[0])
            XCTAssertEqual(choice["text"]?.stringValue, generation["text"]?.stringValue, "generation \(i)")
            XCTAssertEqual(choice["finish_reason"]?.stringValue, generation["finish_reason"]?.stringValue, "generation \(i)")
            let expectedLogprobs = generation["completion_logprobs"]?.arrayValue?.compactMap { $0["logprob"]?.doubleValue } ?? []
            let gotLogprobs = choice["logprobs"]?["token_logprobs"]?.arrayValue?.compactMap(\.doubleValue) ?? []
            XCTAssertEqual(gotLogprobs.count, expectedLogprobs.count, "generation \(i)")
            let mismatches = zip(gotLogprobs, expectedLogprobs).enumerated().filter { abs($0.element.0 - $0.element.1) > 1e-3 }
            XCTAssertTrue(mismatches.isEmpty, "generation \(i): first logprob mismatches (index, got, expected): \(mismatches.prefix(3).map { ($0.offset, $0.element.0, $0.element.1) })")
            let promptCount = generation["prompt"]?.arrayValue?.count ?? 0
            XCTAssertEqual(json["usage"]?["prompt_tokens"]?.intValue, promptCount)
        }
    }

    func testStopStringsMatchPythonFind() async throws {
        let running = try await startServer()
        let stops = try XCTUnwrap(reference()["stops"]?.arrayValue)
        for stop in stops {
            let prompt = try XCTUnwrap(stop["prompt"]).encodedString
            let body = #"{"prompt":\#(prompt),"max_tokens":\#(stop["max_tokens"]?.intValue ?? 0),"temperature":0,"stop":\#(try XCTUnwrap(stop["stop"]).encodedString)}"#
            for streaming in [false, true] {
                let reply = try await running.client.send("POST", "/v1/completions", json: streaming ? body.replacingOccurrences(of: "}", with: #","stream":true}"#) : body)
                XCTAssertEqual(reply.status, 200, reply.text)
                let (text, finish) = try streaming ? streamedText(reply) : (JSONParser.parse(reply.body)["choices"]?[0]?["text"]?.stringValue ?? "", JSONParser.parse(reply.body)["choices"]?[0]?["finish_reason"]?.stringValue)
                XCTAssertEqual(text, stop["text"]?.stringValue, "stop \(stop["stop"]?.encodedString ?? "") streaming \(streaming)")
                XCTAssertEqual(finish, "stop")
            }
        }
    }

    /// The concatenated text and the last finish_reason of an SSE reply, checking the framing.
    private func streamedText(_ reply: LoopbackClient.Reply) throws -> (String, String?) {
        XCTAssertEqual(reply.header("Content-Type"), "text/event-stream; charset=utf-8")
        let text = reply.text
        XCTAssertTrue(text.hasSuffix("\n\ndata: [DONE]\n\n"), String(text.suffix(100)))
        var out = ""
        var finish: String?
        for event in text.components(separatedBy: "\n\n").dropLast() where event != "data: [DONE]" {
            XCTAssertTrue(event.hasPrefix("data: {"), event)
            let chunk = try JSONParser.parse(Array(event.dropFirst(6).utf8))
            out += chunk["choices"]?[0]?["text"]?.stringValue ?? ""
            finish = chunk["choices"]?[0]?["finish_reason"]?.stringValue ?? finish
        }
        return (out, finish)
    }

    // MARK: The API over real sockets

    func testStreamingEqualsNonStreamingAndSeedsReproduce() async throws {
        let running = try await startServer()
        let body = #"{"prompt":"Hello, my name is","max_tokens":12,"temperature":0.8,"seed":42,"n":2}"#
        let whole = try JSONParser.parse(try await running.client.send("POST", "/v1/completions", json: body).body)
        let again = try JSONParser.parse(try await running.client.send("POST", "/v1/completions", json: body).body)
        XCTAssertEqual(whole["choices"], again["choices"], "same seed, same choices")
        let streamed = try await running.client.send("POST", "/v1/completions", json: body.replacingOccurrences(of: "}", with: #","stream":true}"#))
        var texts = ["", ""]
        for event in streamed.text.components(separatedBy: "\n\n").dropLast() where event.hasPrefix("data: {") {
            let chunk = try JSONParser.parse(Array(event.dropFirst(6).utf8))
            if let index = chunk["choices"]?[0]?["index"]?.intValue { texts[index] += chunk["choices"]?[0]?["text"]?.stringValue ?? "" }
        }
        XCTAssertEqual(texts, [whole["choices"]?[0]?["text"]?.stringValue ?? "?", whole["choices"]?[1]?["text"]?.stringValue ?? "?"])
    }

    func testEchoLogprobsScoreThePrompt() async throws {
        let running = try await startServer()
        let generation = try XCTUnwrap(reference()["generations"]?.arrayValue?.first { ($0["prompt_logprobs"]?.arrayValue?.count ?? 0) > 1 })
        let prompt = try XCTUnwrap(generation["prompt"]?.arrayValue)
        let reply = try await running.client.send("POST", "/v1/completions", json: #"{"prompt":\#(JSONValue.array(prompt).encodedString),"max_tokens":0,"echo":true,"logprobs":1}"#)
        XCTAssertEqual(reply.status, 200, reply.text)
        let logprobs = try XCTUnwrap(JSONParser.parse(reply.body)["choices"]?[0]?["logprobs"])
        XCTAssertEqual(logprobs["token_logprobs"]?[0], .null)
        // The reference scores tokens 1..<count (token 0 has nothing before it).
        let expected = [nil] + (generation["prompt_logprobs"]?.arrayValue?.map { $0["logprob"]?.doubleValue } ?? [])
        let got = logprobs["token_logprobs"]?.arrayValue?.map(\.doubleValue) ?? []
        XCTAssertEqual(got.count, prompt.count)
        XCTAssertEqual(expected.count, prompt.count)
        for (index, (g, e)) in zip(got, expected).enumerated() where g != nil || e != nil {
            XCTAssertEqual(g ?? .nan, e ?? .nan, accuracy: 1e-3, "prompt token \(index)")
        }
    }

    func testErrorsOverTheWire() async throws {
        let running = try await startServer(apiKeys: ["k"], maxBodyBytes: 4096)
        let auth = ["Authorization": "Bearer k"]
        var reply = try await running.client.send("POST", "/v1/completions", json: #"{"prompt":"x"}"#)
        XCTAssertEqual(reply.status, 401)
        reply = try await running.client.send("POST", "/v1/completions", body: [0x7B, 0xFF, 0x7D], headers: auth)
        XCTAssertEqual(reply.status, 400, reply.text)
        reply = try await running.client.send("POST", "/v1/completions", json: #"{"prompt":[50257]}"#, headers: auth)
        XCTAssertEqual(reply.status, 400)
        XCTAssertTrue(reply.text.contains("\"param\":\"prompt\""), reply.text)
        reply = try await running.client.send("POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":512}"#, headers: auth)
        XCTAssertEqual(reply.status, 400)
        XCTAssertTrue(reply.text.contains("context_length_exceeded"), reply.text)
        reply = try await running.client.send("POST", "/v1/completions", json: #"{"prompt":"\#(String(repeating: "a", count: 5000))"}"#, headers: auth)
        XCTAssertEqual(reply.status, 413)
        XCTAssertTrue(reply.text.contains("\"error\":{"), "413 in OpenAI's shape: \(reply.text)")
        reply = try await running.client.send("GET", "/v1/completions", headers: auth)
        XCTAssertEqual(reply.status, 405)
        XCTAssertEqual(reply.header("Allow"), "POST")
        reply = try await running.client.send("GET", "/nowhere")
        XCTAssertEqual(reply.status, 404)
        reply = try await running.client.send("GET", "/readyz")
        XCTAssertEqual(reply.status, 200)
        reply = try await running.client.send("GET", "/metrics")
        XCTAssertTrue(reply.text.contains(#"gptneo_http_requests_total{endpoint="/v1/completions",method="POST",status="400"} 3"#), reply.text)
        XCTAssertTrue(reply.text.contains(#"gptneo_http_requests_total{endpoint="/v1/completions",method="POST",status="413"} 1"#), reply.text)
    }

    func testTokenizeRoundTripsWithTheRealTokenizer() async throws {
        let running = try await startServer()
        let reply = try await running.client.send("POST", "/v1/tokenize", json: #"{"prompt":"Hello world<|endoftext|>"}"#)
        let json = try JSONParser.parse(reply.body)
        XCTAssertEqual(json["tokens"], .array([.int(15496), .int(995), .int(50256)]))
        XCTAssertEqual(json["max_model_len"]?.intValue, 512)
        let back = try await running.client.send("POST", "/v1/detokenize", json: #"{"tokens":[15496,995,50256]}"#)
        XCTAssertEqual(try JSONParser.parse(back.body)["prompt"]?.stringValue, "Hello world<|endoftext|>")
    }
}

extension EndToEndTests {
    /// RFC 9110 §9.3.2: a HEAD answer carries the Content-Length the GET would have, and no body.
    func testHeadCarriesTheContentLengthOfGet() async throws {
        let running = try await startServer()
        for path in ["/healthz", "/readyz", "/v1/models", "/openapi.json"] {
            let get = try await running.client.send("GET", path)
            let head = try await running.client.send("HEAD", path)
            XCTAssertEqual(head.status, get.status, path)
            XCTAssertEqual(head.header("Content-Length"), String(get.body.count), path)
            XCTAssertEqual(head.body, [], path)
        }
    }
}

extension EndToEndTests {
    /// /v1/models and /metrics report how the weights are kept and their bytes: the bundled model's file
    /// is F16, which `auto` keeps.
    func testModelsAndMetricsReportTheWeightFormat() async throws {
        let running = try await startServer()
        let model = try JSONParser.parse(try await running.client.send("GET", "/v1/models").body)["data"]?[0]
        XCTAssertEqual(model?["weight_format"]?.stringValue, "float16")
        let bytes = try XCTUnwrap(model?["weight_bytes"]?.intValue)
        XCTAssertGreaterThan(bytes, 0)
        let metrics = try await running.client.send("GET", "/metrics").text
        XCTAssertTrue(metrics.contains("gptneo_model_weight_bytes{format=\"float16\"} \(bytes)\n"), metrics)
    }
}
