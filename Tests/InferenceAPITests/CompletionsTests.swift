import Batcher
import XCTest
@testable import InferenceAPI

final class CompletionsTests: XCTestCase {
    // MARK: Response shape

    func testNonStreamingResponseHasOpenAIShapeAndUsage() async throws {
        let backend = FakeBackend()
        let service = try await InferenceService.makeReady(backend: backend)
        let answer = await service.complete(#"{"model":"tiny","prompt":"Hi","max_tokens":3}"#)
        XCTAssertEqual(answer.status, 200, answer.text)
        let json = answer.json
        XCTAssertEqual(json["object"]?.stringValue, "text_completion")
        XCTAssertTrue(json["id"]?.stringValue?.hasPrefix("cmpl-") ?? false)
        XCTAssertEqual(json["model"]?.stringValue, "tiny")
        XCTAssertNotNil(json["created"]?.intValue)
        XCTAssertNotNil(json["system_fingerprint"]?.stringValue)
        XCTAssertEqual(json["choices"]?.arrayValue?.count, 1)
        XCTAssertEqual(json["choices"]?[0]?["text"]?.stringValue, "abc")
        XCTAssertEqual(json["choices"]?[0]?["index"]?.intValue, 0)
        XCTAssertEqual(json["choices"]?[0]?["logprobs"], .null)
        XCTAssertEqual(json["choices"]?[0]?["finish_reason"]?.stringValue, "length")
        XCTAssertEqual(json["usage"]?["prompt_tokens"]?.intValue, 2)
        XCTAssertEqual(json["usage"]?["completion_tokens"]?.intValue, 3)
        XCTAssertEqual(json["usage"]?["total_tokens"]?.intValue, 5)
        XCTAssertEqual(backend.submitted.first?.promptTokens, [72, 105])
    }

    func testDefaultsMatchOpenAI() async throws {
        let backend = FakeBackend()
        let service = try await InferenceService.makeReady(backend: backend)
        let answer = await service.complete(#"{"prompt":"x"}"#)
        XCTAssertEqual(answer.status, 200, answer.text)
        let p = try XCTUnwrap(backend.submitted.first?.parameters)
        XCTAssertEqual(p.maxTokens, 16)
        XCTAssertEqual(p.temperature, 1)
        XCTAssertEqual(p.topP, 1)
        XCTAssertEqual(p.n, 1)
        XCTAssertNil(p.logprobs)
        XCTAssertFalse(p.echo)
    }

    func testEveryParameterReachesTheBatcher() async throws {
        let backend = FakeBackend()
        let service = try await InferenceService.makeReady(backend: backend)
        let body = #"""
        {"prompt":"x","max_tokens":5,"temperature":0.5,"top_p":0.9,"n":2,"logprobs":3,"echo":true,"stop":["z","y"],
         "presence_penalty":0.5,"frequency_penalty":-0.5,"logit_bias":{"97":-100,"98":5.5},"seed":-1,"user":"u",
         "top_k":7,"repetition_penalty":1.2,"ignore_eos":true,"unknown_field":{"x":1}}
        """#
        let answer = await service.complete(body)
        XCTAssertEqual(answer.status, 200, answer.text)
        let p = try XCTUnwrap(backend.submitted.first?.parameters)
        XCTAssertEqual(p.maxTokens, 5)
        XCTAssertEqual(p.temperature, 0.5)
        XCTAssertEqual(p.topP, 0.9)
        XCTAssertEqual(p.n, 2)
        XCTAssertEqual(p.logprobs, 3)
        XCTAssertTrue(p.echo)
        XCTAssertEqual(p.stop, ["z", "y"])
        XCTAssertEqual(p.presencePenalty, 0.5)
        XCTAssertEqual(p.frequencyPenalty, -0.5)
        XCTAssertEqual(p.logitBias, [97: -100, 98: 5.5])
        XCTAssertEqual(p.seed, UInt64.max)
        XCTAssertEqual(p.topK, 7)
        XCTAssertEqual(p.repetitionPenalty, 1.2)
        XCTAssertTrue(p.ignoreEOS)
    }

    func testTopKMinusOneMeansOff() async throws {
        let backend = FakeBackend()
        let service = try await InferenceService.makeReady(backend: backend)
        _ = await service.complete(#"{"prompt":"x","top_k":-1}"#)
        XCTAssertEqual(backend.submitted.first?.parameters.topK, 0)
    }

    // MARK: Prompt variants and choice indexing

    func testPromptListIndexesChoicesPromptMajor() async throws {
        let backend = FakeBackend()
        let service = try await InferenceService.makeReady(backend: backend)
        let answer = await service.complete(#"{"prompt":["ab","cde"],"max_tokens":2,"n":2}"#)
        XCTAssertEqual(answer.status, 200, answer.text)
        let choices = try XCTUnwrap(answer.json["choices"]?.arrayValue)
        XCTAssertEqual(choices.map { $0["index"]?.intValue }, [0, 1, 2, 3])
        XCTAssertEqual(choices.map { $0["text"]?.stringValue }, ["ab", "bc", "ab", "bc"])
        XCTAssertEqual(answer.json["usage"]?["prompt_tokens"]?.intValue, 5)
        XCTAssertEqual(answer.json["usage"]?["completion_tokens"]?.intValue, 8)
        XCTAssertEqual(backend.submitted.map(\.promptTokens), [[97, 98], [99, 100, 101]])
    }

    func testTokenPromptsAreAccepted() async throws {
        let backend = FakeBackend()
        let service = try await InferenceService.makeReady(backend: backend)
        let single = await service.complete(#"{"prompt":[72,105],"max_tokens":1,"echo":true}"#)
        XCTAssertEqual(single.status, 200, single.text)
        XCTAssertEqual(single.json["choices"]?[0]?["text"]?.stringValue, "Hia")
        let several = await service.complete(#"{"prompt":[[72],[105,256]],"max_tokens":1}"#)
        XCTAssertEqual(several.status, 200, several.text)
        XCTAssertEqual(several.json["choices"]?.arrayValue?.count, 2)
        XCTAssertEqual(backend.submitted.map(\.promptTokens), [[72, 105], [72], [105, 256]])
    }

    func testSpecialTokensInTextArePrompted() async throws {
        let backend = FakeBackend()
        let service = try await InferenceService.makeReady(backend: backend)
        _ = await service.complete(#"{"prompt":"a<|endoftext|>","max_tokens":1}"#)
        XCTAssertEqual(backend.submitted.first?.promptTokens, [97, 256])
    }

    // MARK: best_of, echo, logprobs, stop

    func testBestOfReturnsTheHighestScoringChoices() async throws {
        let backend = FakeBackend()
        let service = try await InferenceService.makeReady(backend: backend)
        let answer = await service.complete(#"{"prompt":"x","max_tokens":2,"n":1,"best_of":3}"#)
        XCTAssertEqual(answer.status, 200, answer.text)
        let choices = try XCTUnwrap(answer.json["choices"]?.arrayValue)
        XCTAssertEqual(choices.count, 1)
        XCTAssertEqual(choices[0]["text"]?.stringValue, "ab")
        XCTAssertEqual(choices[0]["logprobs"], .null, "logprobs were not asked for")
        XCTAssertEqual(backend.submitted.first?.parameters.n, 3)
        XCTAssertEqual(backend.submitted.first?.parameters.logprobs, 0, "ranking needs logprobs")
        XCTAssertEqual(answer.json["usage"]?["completion_tokens"]?.intValue, 6, "usage counts every generated token")
    }

    func testLogprobsHaveTokensOffsetsAndTopAlternatives() async throws {
        let service = try await InferenceService.makeReady()
        let answer = await service.complete(#"{"prompt":"x","max_tokens":3,"logprobs":1}"#)
        let logprobs = try XCTUnwrap(answer.json["choices"]?[0]?["logprobs"])
        XCTAssertEqual(logprobs["tokens"], .array(["a", "b", "c"]))
        XCTAssertEqual(logprobs["text_offset"], .array([.int(0), .int(1), .int(2)]))
        let values = try XCTUnwrap(logprobs["token_logprobs"]?.arrayValue?.compactMap(\.doubleValue))
        XCTAssertEqual(values.count, 3)
        for (got, want) in zip(values, [-0.1, -0.2, -0.3]) { XCTAssertEqual(got, want, accuracy: 1e-6) }
        let firstTop = try XCTUnwrap(logprobs["top_logprobs"]?[0])
        guard case .object(let top) = firstTop else { return XCTFail("top_logprobs[0] = \(firstTop)") }
        XCTAssertEqual(top.keys, ["a"])
    }

    func testEchoWithLogprobsPrependsThePromptWithNullFirstLogprob() async throws {
        let service = try await InferenceService.makeReady()
        let answer = await service.complete(#"{"prompt":"Hi!","max_tokens":2,"logprobs":2,"echo":true}"#)
        XCTAssertEqual(answer.status, 200, answer.text)
        let choice = try XCTUnwrap(answer.json["choices"]?[0])
        XCTAssertEqual(choice["text"]?.stringValue, "Hi!ab")
        let logprobs = try XCTUnwrap(choice["logprobs"])
        XCTAssertEqual(logprobs["tokens"], .array(["H", "i", "!", "a", "b"]))
        XCTAssertEqual(logprobs["text_offset"], .array((0..<5).map { .int($0) }))
        XCTAssertEqual(logprobs["token_logprobs"]?[0], .null)
        XCTAssertEqual(logprobs["top_logprobs"]?[0], .null)
        XCTAssertEqual(logprobs["token_logprobs"]?[1]?.doubleValue, -0.5)
        guard case .object(let top)? = logprobs["top_logprobs"]?[3] else { return XCTFail("no top_logprobs[3]") }
        XCTAssertEqual(top.keys, ["a", "<|endoftext|>"])
    }

    func testEchoWithZeroMaxTokensScoresThePrompt() async throws {
        let service = try await InferenceService.makeReady()
        let answer = await service.complete(#"{"prompt":"ab","max_tokens":0,"echo":true,"logprobs":0}"#)
        XCTAssertEqual(answer.status, 200, answer.text)
        XCTAssertEqual(answer.json["choices"]?[0]?["text"]?.stringValue, "ab")
        XCTAssertEqual(answer.json["usage"]?["completion_tokens"]?.intValue, 0)
    }

    func testStopEndsTheChoiceWithFinishReasonStop() async throws {
        let service = try await InferenceService.makeReady()
        let answer = await service.complete(#"{"prompt":"x","max_tokens":10,"stop":"d"}"#)
        XCTAssertEqual(answer.json["choices"]?[0]?["text"]?.stringValue, "abc")
        XCTAssertEqual(answer.json["choices"]?[0]?["finish_reason"]?.stringValue, "stop")
    }

    func testUnknownModelIs404() async throws {
        let service = try await InferenceService.makeReady()
        let answer = await service.complete(#"{"model":"gpt-4","prompt":"x"}"#)
        XCTAssertEqual(answer.status, 404)
        XCTAssertEqual(answer.errorCode, "model_not_found")
    }
}

/// Counts encodings, to show which requests are refused before tokenization.
final class CountingTokenizer: TextTokenizer, @unchecked Sendable {
    let inner = ByteTokenizer()
    private let lock = NSLock()
    private var encodings = 0
    var encodeCount: Int { lock.withLock { encodings } }
    var vocabularySize: Int { inner.vocabularySize }
    var endOfTextTokenID: Int? { inner.endOfTextTokenID }
    var longestTokenBytes: Int { inner.longestTokenBytes }
    func encode(_ text: String, allowSpecialTokens: Bool) -> [Int] {
        lock.withLock { encodings += 1 }
        return inner.encode(text, allowSpecialTokens: allowSpecialTokens)
    }
    func decode(_ ids: [Int]) -> String { inner.decode(ids) }
}

extension CompletionsTests {
    /// A prompt whose bytes alone need more tokens than the context holds is refused without tokenizing it;
    /// one that may fit is tokenized and checked exactly.
    func testPromptTooLongByItsBytesIsRefusedBeforeTokenization() async throws {
        let tokenizer = CountingTokenizer()
        let service = InferenceService(configuration: APIConfiguration())
        try await service.start(with: ServingContext(backend: FakeBackend(), tokenizer: tokenizer, model: ModelDescription(id: "tiny", contextLength: 64)))
        let warmUpEncodings = tokenizer.encodeCount
        let long = String(repeating: "a", count: 64 * 13)
        let refused = await service.send("POST", "/v1/completions", body: #"{"prompt":"\#(long)","max_tokens":1}"#)
        XCTAssertEqual(refused.status, 400)
        XCTAssertEqual(refused.json["error"]?["code"]?.stringValue, "context_length_exceeded")
        XCTAssertEqual(refused.errorParam, "prompt")
        XCTAssertTrue(refused.json["error"]?["message"]?.stringValue?.contains("at least 64 in the prompt") ?? false, refused.text)
        XCTAssertEqual(tokenizer.encodeCount, warmUpEncodings, "refused before tokenization")
        let exact = await service.send("POST", "/v1/completions", body: #"{"prompt":"\#(String(repeating: "a", count: 64))","max_tokens":1}"#)
        XCTAssertEqual(exact.status, 400, "64 bytes may be 5 tokens: tokenized, then refused for its 64")
        XCTAssertEqual(tokenizer.encodeCount, warmUpEncodings + 1)
    }
}
