import Foundation
import XCTest
@testable import GPTNeo

/// A 700-token sequence on a checkpoint with the real models' window (256) against transformers
/// (Tests/Fixtures/long-context, written by scripts/fixtures/generate_long_context_fixtures.py).
final class LongContextTests: XCTestCase {
    struct Expected: Decodable {
        var transformersVersion: String
        var tokens: [Int]
        var logitSubsetIDs: [Int]
        var logitSubset: [Float]
        var logsumexp: [Float]
        var argmax: [Int]
        var promptLength: Int
        var continuation: [Int]
        enum CodingKeys: String, CodingKey {
            case tokens, logsumexp, argmax, continuation
            case transformersVersion = "transformers_version", logitSubsetIDs = "logit_subset_ids"
            case logitSubset = "logit_subset", promptLength = "prompt_length"
        }
    }

    static let directory = fixturesDirectory.appendingPathComponent("long-context")
    static let model = try! GPTNeoModel.load(directory: directory)
    static let expected = try! JSONDecoder().decode(Expected.self, from: Data(contentsOf: directory.appendingPathComponent("expected.json")))

    /// Logits of every position within 1e-4 of transformers, whether the 700 tokens come in one
    /// forward pass or in prefill chunks of 128 and then single decode steps; identical bits both ways.
    func testSevenHundredTokensMatchTransformers() throws {
        let (model, expected) = (Self.model, Self.expected)
        let vocab = model.config.vocabSize
        let engine = GPTNeoEngine(model: model)
        let whole = try engine.forward([ForwardItem(cache: engine.makeCache(capacity: 700), tokens: expected.tokens, logitRows: .all)])[0].logits
        let summary = summarize(whole, vocab: vocab, ids: expected.logitSubsetIDs)
        var worst = assertClose(summary.subset, expected.logitSubset, tolerance: referenceTolerance, "logits at the subset ids")
        worst = max(worst, assertClose(summary.logsumexp, expected.logsumexp, tolerance: referenceTolerance, "log-sum-exp"))
        XCTAssertEqual(summary.argmax, expected.argmax, "argmax at every position")
        print("700 tokens: max |Δ| vs transformers \(expected.transformersVersion): \(worst)")

        let cache = engine.makeCache(capacity: 700)
        var pieces: [Float] = []
        while cache.count < 700 {
            let end = cache.count < 512 ? cache.count + 128 : cache.count + 1
            pieces += try engine.forward([ForwardItem(cache: cache, tokens: Array(expected.tokens[cache.count..<end]), logitRows: .all)])[0].logits
        }
        assertBitwiseEqual(pieces, whole, "chunks of 128, then decode steps, vs one pass")
    }

    /// Greedy decoding of 64 tokens after a 640-token prompt reproduces generate(do_sample=False).
    func testGreedyContinuationAfterLongPromptMatchesGenerate() throws {
        let (model, expected) = (Self.model, Self.expected)
        let engine = GPTNeoEngine(model: model)
        let cache = engine.makeCache(capacity: expected.promptLength + expected.continuation.count)
        var logits = try engine.forward([ForwardItem(cache: cache, tokens: Array(expected.tokens.prefix(expected.promptLength)))])[0].logits
        var produced: [Int] = []
        while produced.count < expected.continuation.count {
            let next = argmax(logits[...])
            produced.append(next)
            logits = try engine.forward([ForwardItem(cache: cache, tokens: [next])])[0].logits
        }
        XCTAssertEqual(produced, expected.continuation)
    }
}
