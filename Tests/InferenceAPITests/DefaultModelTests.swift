import Foundation
import XCTest
@testable import InferenceAPI

/// The bundled default model served through the real stack, against transformers on the same checkpoint
/// (`Tests/Fixtures/default-model/expected.json`, written by
/// `scripts/train-default-model/generate_default_model_fixtures.py` with the training script's own scoring).
final class DefaultModelTests: XCTestCase {
    static let root = RunningServer.root
    static let dictionaryPath = "/usr/share/dict/american-english"
    /// The bundled default model (the executable's `DefaultModel.relativePath`, not visible from here).
    static let modelPath = "models/gpt-neo-kjv-8m"

    private func startServer() async throws -> RunningServer {
        try await RunningServer.start(for: self, model: Self.modelPath, heads: nil)
    }

    private func reference() throws -> JSONValue {
        let data = try Data(contentsOf: Self.root.appendingPathComponent("Tests/Fixtures/default-model/expected.json"))
        return try JSONParser.parse(Array(data))
    }

    private func complete(_ running: RunningServer, _ body: String) async throws -> JSONValue {
        let reply = try await running.client.send("POST", "/v1/completions", json: body)
        XCTAssertEqual(reply.status, 200, reply.text)
        return try JSONParser.parse(reply.body)
    }

    // MARK: Held-out perplexity through the API

    func testHeldOutPerplexityThroughTheAPIMatchesTheTrainingScript() async throws {
        let running = try await startServer()
        let slice = try XCTUnwrap(reference()["held_out_slice"])
        let blocks = try XCTUnwrap(slice["blocks"]?.arrayValue)
        var negativeLogLikelihood = 0.0
        var scored = 0
        for block in blocks {
            let json = try await complete(running, #"{"prompt":\#(block.encodedString),"max_tokens":0,"echo":true,"logprobs":0}"#)
            let logprobs = try XCTUnwrap(json["choices"]?[0]?["logprobs"]?["token_logprobs"]?.arrayValue)
            XCTAssertEqual(logprobs.count, block.arrayValue?.count, "one entry per prompt token")
            XCTAssertEqual(logprobs.first, .null, "the first token has no prediction")
            for logprob in logprobs.dropFirst() {
                negativeLogLikelihood -= try XCTUnwrap(logprob.doubleValue)
                scored += 1
            }
        }
        XCTAssertEqual(scored, slice["scored_tokens"]?.intValue)
        let perplexity = exp(negativeLogLikelihood / Double(scored))
        let expected = try XCTUnwrap(slice["perplexity"]?.doubleValue)
        XCTAssertEqual(perplexity, expected, accuracy: expected * 0.001,
                       "server \(perplexity) vs training script \(expected) over \(scored) tokens")
    }

    // MARK: Greedy decoding equals transformers' generate

    func testGreedyContinuationsMatchTransformersGenerate() async throws {
        let running = try await startServer()
        let cases = try XCTUnwrap(reference()["greedy"]?.arrayValue)
        XCTAssertEqual(cases.count, 5)
        for expected in cases {
            let prompt = try XCTUnwrap(expected["prompt"]).encodedString
            let maxTokens = try XCTUnwrap(expected["max_tokens"]?.intValue)
            let json = try await complete(running, #"{"prompt":\#(prompt),"max_tokens":\#(maxTokens),"temperature":0}"#)
            let choice = try XCTUnwrap(json["choices"]?[0])
            XCTAssertEqual(choice["text"]?.stringValue, expected["text"]?.stringValue, "prompt \(prompt)")
            XCTAssertEqual(choice["finish_reason"]?.stringValue, expected["finish_reason"]?.stringValue, "prompt \(prompt)")
            XCTAssertEqual(json["usage"]?["completion_tokens"]?.intValue, expected["token_ids"]?.arrayValue?.count, "prompt \(prompt)")
        }
    }

    // MARK: Sampling with the model's defaults reads as English

    func testSampledTextWithDefaultSettingsIsMostlyDictionaryWords() async throws {
        guard let list = try? String(contentsOfFile: Self.dictionaryPath, encoding: .utf8) else {
            return XCTFail("\(Self.dictionaryPath) is missing: install the wamerican package (scripts/install-deps.sh does)")
        }
        let dictionary = Set(list.split(separator: "\n").map { $0.lowercased() })
        let running = try await startServer()
        let fixture = try reference()
        let prompts = try XCTUnwrap(fixture["sampling_prompts"]?.arrayValue?.compactMap(\.stringValue))
        let maxTokens = try XCTUnwrap(fixture["sampling_max_tokens"]?.intValue)
        XCTAssertEqual(prompts.count, 4)
        var words: [String] = []
        for (i, prompt) in prompts.enumerated() {
            // No sampling fields: temperature and top_p come from the model's generation_config.json.
            let json = try await complete(running, #"{"prompt":\#(JSONValue.string(prompt).encodedString),"max_tokens":\#(maxTokens),"seed":\#(i)}"#)
            words += Self.words(in: try XCTUnwrap(json["choices"]?[0]?["text"]?.stringValue))
        }
        let known = words.filter { dictionary.contains($0) }
        let unknown = words.filter { !dictionary.contains($0) }
        XCTAssertGreaterThanOrEqual(words.count, 60, "too few words generated to judge: \(words)")
        XCTAssertGreaterThanOrEqual(Double(known.count), 0.8 * Double(words.count),
                                    "\(known.count) of \(words.count) words are in the dictionary; not: \(unknown)")
    }

    func testRequestsWithoutSamplingFieldsSampleWithTheGenerationConfig() async throws {
        let running = try await startServer()
        let prompt = #""And God said""#
        let implicit = try await complete(running, #"{"prompt":\#(prompt),"max_tokens":40,"seed":7}"#)
        let explicit = try await complete(running, #"{"prompt":\#(prompt),"max_tokens":40,"seed":7,"temperature":0.8,"top_p":0.95,"top_k":0}"#)
        let openAIDefaults = try await complete(running, #"{"prompt":\#(prompt),"max_tokens":40,"seed":7,"temperature":1,"top_p":1}"#)
        let text = { (json: JSONValue) in json["choices"]?[0]?["text"]?.stringValue }
        XCTAssertNotNil(text(implicit))
        XCTAssertEqual(text(implicit), text(explicit))
        XCTAssertNotEqual(text(implicit), text(openAIDefaults))
    }

    /// Runs of letters (with inner apostrophes, as in "LORD's"), lower-cased: numbers and punctuation are not words.
    static func words(in text: String) -> [String] {
        text.split(whereSeparator: { !($0.isLetter || $0 == "'") })
            .map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "'")).lowercased() }
            .filter { !$0.isEmpty }
    }
}
