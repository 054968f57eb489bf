import Batcher
import XCTest
@testable import InferenceAPI

/// Every bad input gets a 4xx in OpenAI's shape that names the field; none reaches the batcher.
final class ValidationTests: XCTestCase {
    private struct Case { var body: String; var status = 400; var param: String?; var line: UInt }

    private func check(_ cases: [Case]) async throws {
        let backend = FakeBackend()
        let service = try await InferenceService.makeReady(backend: backend, contextLength: 64)
        for c in cases {
            let answer = await service.complete(c.body)
            XCTAssertEqual(answer.status, c.status, "\(c.body) → \(answer.text)", line: c.line)
            XCTAssertEqual(answer.errorParam, c.param, "\(c.body) → \(answer.text)", line: c.line)
            guard case .object(let error)? = answer.json["error"] else { XCTFail("no error object: \(answer.text)", line: c.line); continue }
            XCTAssertEqual(error.keys.sorted(), ["code", "message", "param", "type"], line: c.line)
            XCTAssertEqual(answer.headers["Content-Type"], "application/json", line: c.line)
        }
        XCTAssertEqual(backend.submitted.count, 0, "bad requests reached the batcher: \(backend.submitted.map(\.promptTokens))")
    }

    func testWrongTypesNameTheField() async throws {
        try await check([
            Case(body: #"{"prompt":1}"#, param: "prompt", line: #line),
            Case(body: #"{"prompt":{"a":1}}"#, param: "prompt", line: #line),
            Case(body: #"{"prompt":"x","max_tokens":"5"}"#, param: "max_tokens", line: #line),
            Case(body: #"{"prompt":"x","max_tokens":1.5}"#, param: "max_tokens", line: #line),
            Case(body: #"{"prompt":"x","max_tokens":true}"#, param: "max_tokens", line: #line),
            Case(body: #"{"prompt":"x","temperature":"hot"}"#, param: "temperature", line: #line),
            Case(body: #"{"prompt":"x","top_p":[1]}"#, param: "top_p", line: #line),
            Case(body: #"{"prompt":"x","n":"2"}"#, param: "n", line: #line),
            Case(body: #"{"prompt":"x","stream":"yes"}"#, param: "stream", line: #line),
            Case(body: #"{"prompt":"x","echo":1}"#, param: "echo", line: #line),
            Case(body: #"{"prompt":"x","logprobs":true}"#, param: "logprobs", line: #line),
            Case(body: #"{"prompt":"x","stop":5}"#, param: "stop", line: #line),
            Case(body: #"{"prompt":"x","stop":["a",1]}"#, param: "stop", line: #line),
            Case(body: #"{"prompt":"x","logit_bias":[1]}"#, param: "logit_bias", line: #line),
            Case(body: #"{"prompt":"x","logit_bias":{"a":1}}"#, param: "logit_bias", line: #line),
            Case(body: #"{"prompt":"x","logit_bias":{"1":"a"}}"#, param: "logit_bias", line: #line),
            Case(body: #"{"prompt":"x","seed":1.5}"#, param: "seed", line: #line),
            Case(body: #"{"prompt":"x","user":5}"#, param: "user", line: #line),
            Case(body: #"{"prompt":"x","model":5}"#, param: "model", line: #line),
            Case(body: #"{"prompt":"x","top_k":"a"}"#, param: "top_k", line: #line),
            Case(body: #"{"prompt":"x","repetition_penalty":"a"}"#, param: "repetition_penalty", line: #line),
            Case(body: #"{"prompt":"x","ignore_eos":"no"}"#, param: "ignore_eos", line: #line),
            Case(body: #"{"prompt":"x","stream":true,"stream_options":true}"#, param: "stream_options", line: #line),
            Case(body: #"{"prompt":"x","stream":true,"stream_options":{"include_usage":"y"}}"#, param: "stream_options.include_usage", line: #line),
        ])
    }

    func testOutOfRangeValues() async throws {
        try await check([
            Case(body: #"{"prompt":"x","max_tokens":-1}"#, param: "max_tokens", line: #line),
            Case(body: #"{"prompt":"x","max_tokens":0}"#, param: "max_tokens", line: #line),
            Case(body: #"{"prompt":"x","max_tokens":1000000000000}"#, param: "max_tokens", line: #line),
            Case(body: #"{"prompt":"x","max_tokens":1e400}"#, param: "max_tokens", line: #line),
            Case(body: #"{"prompt":"x","temperature":-0.1}"#, param: "temperature", line: #line),
            Case(body: #"{"prompt":"x","temperature":2.5}"#, param: "temperature", line: #line),
            Case(body: #"{"prompt":"x","top_p":0}"#, param: "top_p", line: #line),
            Case(body: #"{"prompt":"x","top_p":1.01}"#, param: "top_p", line: #line),
            Case(body: #"{"prompt":"x","n":0}"#, param: "n", line: #line),
            Case(body: #"{"prompt":"x","n":17}"#, param: "n", line: #line),
            Case(body: #"{"prompt":"x","n":3,"best_of":2}"#, param: "best_of", line: #line),
            Case(body: #"{"prompt":"x","best_of":100}"#, param: "best_of", line: #line),
            Case(body: #"{"prompt":"x","best_of":2,"stream":true}"#, param: "best_of", line: #line),
            Case(body: #"{"prompt":"x","logprobs":21}"#, param: "logprobs", line: #line),
            Case(body: #"{"prompt":"x","logprobs":-1}"#, param: "logprobs", line: #line),
            Case(body: #"{"prompt":"x","stop":["a","b","c","d","e"]}"#, param: "stop", line: #line),
            Case(body: #"{"prompt":"x","stop":""}"#, param: "stop", line: #line),
            Case(body: #"{"prompt":"x","presence_penalty":2.1}"#, param: "presence_penalty", line: #line),
            Case(body: #"{"prompt":"x","frequency_penalty":-3}"#, param: "frequency_penalty", line: #line),
            Case(body: #"{"prompt":"x","logit_bias":{"1":101}}"#, param: "logit_bias", line: #line),
            Case(body: #"{"prompt":"x","logit_bias":{"257":1}}"#, param: "logit_bias", line: #line),
            Case(body: #"{"prompt":"x","top_k":-2}"#, param: "top_k", line: #line),
            Case(body: #"{"prompt":"x","repetition_penalty":0}"#, param: "repetition_penalty", line: #line),
            Case(body: #"{"prompt":"x","stream_options":{"include_usage":true}}"#, param: "stream_options", line: #line),
            Case(body: #"{"prompt":["a","b","c","d","e","f","g","h","i"],"n":8}"#, param: "n", line: #line),
        ])
    }

    func testBadPrompts() async throws {
        let tooMany = "[" + Array(repeating: "\"a\"", count: 33).joined(separator: ",") + "]"
        try await check([
            Case(body: #"{"max_tokens":1}"#, param: "prompt", line: #line),
            Case(body: #"{"prompt":null}"#, param: "prompt", line: #line),
            Case(body: #"{"prompt":""}"#, param: "prompt", line: #line),
            Case(body: #"{"prompt":[]}"#, param: "prompt", line: #line),
            Case(body: #"{"prompt":["a",""]}"#, param: "prompt[1]", line: #line),
            Case(body: #"{"prompt":[[1],[]]}"#, param: "prompt[1]", line: #line),
            Case(body: #"{"prompt":["a",1]}"#, param: "prompt[1]", line: #line),
            Case(body: #"{"prompt":[1,"a"]}"#, param: "prompt", line: #line),
            Case(body: #"{"prompt":[1,2.5]}"#, param: "prompt", line: #line),
            Case(body: #"{"prompt":[[1],2]}"#, param: "prompt[1]", line: #line),
            Case(body: #"{"prompt":[true]}"#, param: "prompt", line: #line),
            Case(body: #"{"prompt":[257]}"#, param: "prompt", line: #line),
            Case(body: #"{"prompt":[-1]}"#, param: "prompt", line: #line),
            Case(body: #"{"prompt":[[1],[99999]]}"#, param: "prompt[1]", line: #line),
            Case(body: #"{"prompt":\#(tooMany)}"#, param: "prompt", line: #line),
            Case(body: #"{"prompt":"x","suffix":"y"}"#, param: "suffix", line: #line),
        ])
    }

    func testContextOverflowNamesTheNumbers() async throws {
        let service = try await InferenceService.makeReady(contextLength: 64)
        let long = String(repeating: "a", count: 60)
        let answer = await service.complete(#"{"prompt":"\#(long)","max_tokens":5}"#)
        XCTAssertEqual(answer.status, 400)
        XCTAssertEqual(answer.errorParam, "max_tokens")
        XCTAssertEqual(answer.errorCode, "context_length_exceeded")
        XCTAssertTrue(answer.text.contains("64") && answer.text.contains("65"), answer.text)
        let tooLong = await service.complete(#"{"prompt":"\#(String(repeating: "a", count: 64))","max_tokens":1}"#)
        XCTAssertEqual(tooLong.errorParam, "prompt")
        XCTAssertEqual(tooLong.errorCode, "context_length_exceeded")
        let fits = await service.complete(#"{"prompt":"\#(long)","max_tokens":4}"#)
        XCTAssertEqual(fits.status, 200, fits.text)
    }

    func testMalformedBodies() async throws {
        let service = try await InferenceService.makeReady()
        for body: [UInt8] in [[], Array("{".utf8), Array("[1]".utf8), Array("\"x\"".utf8), Array("null".utf8),
                              Array("{\"prompt\":\"".utf8) + [0xC3, 0x28] + Array("\"}".utf8), [0xFF, 0xFE]] {
            let answer = await service.send("POST", "/v1/completions", rawBody: body)
            XCTAssertEqual(answer.status, 400, "\(body) → \(answer.text)")
            XCTAssertEqual(answer.errorCode, "invalid_json", answer.text)
        }
    }

    func testNullMeansAbsentAndUnknownFieldsAreIgnored() async throws {
        let backend = FakeBackend()
        let service = try await InferenceService.makeReady(backend: backend)
        let answer = await service.complete(#"{"prompt":"x","max_tokens":null,"temperature":null,"stop":null,"suffix":null,"frobnicate":[1,{"a":null}]}"#)
        XCTAssertEqual(answer.status, 200, answer.text)
        XCTAssertEqual(backend.submitted.first?.parameters.maxTokens, 16)
    }

    func testACancelledRequestIsNotCountedAsAServerError() {
        XCTAssertEqual(CompletionsHandler.apiError(for: CancellationError()).status, 499)
        XCTAssertEqual(CompletionsHandler.apiError(for: BatcherError.engineFailure("x")).status, 500)
    }

    func testBatcherErrorsMapToStatuses() async throws {
        let cases: [(BatcherError, Int, String?)] = [
            (.overloaded, 429, "overloaded"),
            (.contextLengthExceeded(promptTokens: 10, maxTokens: 100, contextLength: 64), 400, "context_length_exceeded"),
            (.exceedsMemoryBudget(requiredBytes: 10, budgetBytes: 5), 400, "exceeds_memory_budget"),
            (.invalidRequest("bad"), 400, nil),
            (.shuttingDown, 503, "unavailable"),
        ]
        for (error, status, code) in cases {
            let backend = FakeBackend()
            let service = try await InferenceService.makeReady(backend: backend)
            backend.submitError = error
            let answer = await service.complete(#"{"prompt":"x"}"#)
            XCTAssertEqual(answer.status, status, "\(error) → \(answer.text)")
            XCTAssertEqual(answer.errorCode, code, "\(error)")
            if status == 429 || status == 503 { XCTAssertEqual(answer.headers["Retry-After"], "1") }
        }
    }
}
