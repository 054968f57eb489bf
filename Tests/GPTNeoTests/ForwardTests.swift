import Foundation
import XCTest
@testable import GPTNeo

/// The tiny checkpoint against transformers' own numbers (Tests/Fixtures/engine/expected.json).
final class ForwardTests: XCTestCase {
    let model = Shared.model
    let expected = Shared.expected
    var vocab: Int { model.config.vocabSize }

    /// Checks one sequence's hidden states and logits (rows, V) against the fixture case; returns max |Δ|.
    @discardableResult
    func check(hidden: [Float], logits: [Float], against reference: ExpectedValues.Case, _ what: String) -> Float {
        let summary = summarize(logits, vocab: vocab, ids: expected.logitSubsetIDs)
        var worst = assertClose(hidden, reference.hidden, tolerance: referenceTolerance, "\(what) hidden")
        worst = max(worst, assertClose(summary.subset, reference.logitSubset, tolerance: referenceTolerance, "\(what) logits"))
        worst = max(worst, assertClose(summary.logsumexp, reference.logsumexp, tolerance: referenceTolerance, "\(what) logsumexp"))
        XCTAssertEqual(summary.argmax, reference.argmax, "\(what) argmax")
        if let full = reference.fullLogitsLast {
            worst = max(worst, assertClose(Array(logits.suffix(vocab)), full, tolerance: referenceTolerance, "\(what) last row, all logits"))
        }
        return worst
    }

    func testConfigOfTinyCheckpoint() {
        let config = model.config
        XCTAssertEqual(config.vocabSize, 50257)
        XCTAssertEqual(config.attentionLayers, [.global, .local, .global, .local])
        XCTAssertEqual(config.intermediateSize, 4 * config.hiddenSize)
        XCTAssertEqual(config.eosTokenID, 50256)
        XCTAssertEqual(expected.hiddenSize, config.hiddenSize)
    }

    /// Full sequence in one forward call: every position within 1e-4 of transformers.
    func testFullSequenceMatchesTransformers() throws {
        let engine = GPTNeoEngine(model: model)
        var worst: Float = 0
        for reference in expected.cases {
            let cache = engine.makeCache(capacity: reference.tokens.count)
            let out = try engine.forward([ForwardItem(cache: cache, tokens: reference.tokens, hiddenRows: .all, logitRows: .all)])
            worst = max(worst, check(hidden: out[0].hidden, logits: out[0].logits, against: reference, "length \(reference.tokens.count)"))
        }
        print("full-sequence max |Δ| vs transformers \(expected.transformersVersion): \(worst)")
    }

    /// One token at a time through the KV cache, far past the window: the same numbers.
    func testCachedStepByStepMatchesTransformers() throws {
        let engine = GPTNeoEngine(model: model)
        var worst: Float = 0
        for reference in expected.cases {
            let cache = engine.makeCache(capacity: reference.tokens.count)
            var hidden: [Float] = [], logits: [Float] = []
            for token in reference.tokens {
                let out = try engine.forward([ForwardItem(cache: cache, tokens: [token], hiddenRows: .last, logitRows: .last)])
                hidden += out[0].hidden; logits += out[0].logits
            }
            XCTAssertEqual(cache.count, reference.tokens.count)
            worst = max(worst, check(hidden: hidden, logits: logits, against: reference, "stepwise length \(reference.tokens.count)"))
        }
        print("cached step-by-step max |Δ| vs transformers: \(worst)")
    }

    /// Chunks of uneven sizes (some crossing the window).
    func testChunkedPrefillMatchesTransformers() throws {
        let engine = GPTNeoEngine(model: model)
        let reference = expected.cases.last!
        let cache = engine.makeCache(capacity: reference.tokens.count)
        var hidden: [Float] = [], logits: [Float] = []
        var start = 0
        for size in [3, 11, 1, 6, 20, 2, 9] + [Int](repeating: 16, count: 10) where start < reference.tokens.count {
            let end = min(reference.tokens.count, start + size)
            let out = try engine.forward([ForwardItem(cache: cache, tokens: Array(reference.tokens[start..<end]),
                                                      hiddenRows: .all, logitRows: .all)])
            hidden += out[0].hidden; logits += out[0].logits
            start = end
        }
        check(hidden: hidden, logits: logits, against: reference, "chunked")
    }

    /// Greedy decoding with the cache reproduces transformers' generate(do_sample=False), 64 tokens.
    func testGreedyContinuationMatchesGenerate() throws {
        let engine = GPTNeoEngine(model: model)
        for generation in expected.generations {
            let cache = engine.makeCache(capacity: generation.prompt.count + generation.continuation.count)
            var logits = try engine.forward([ForwardItem(cache: cache, tokens: generation.prompt)])[0].logits
            var produced: [Int] = []
            while produced.count < generation.continuation.count {
                let next = argmax(logits[...])
                produced.append(next)
                if produced.count == generation.continuation.count { break }
                logits = try engine.forward([ForwardItem(cache: cache, tokens: [next])])[0].logits
            }
            XCTAssertEqual(produced, generation.continuation, "prompt of \(generation.prompt.count) tokens")
        }
    }

    func testOutputRowSelection() throws {
        let engine = GPTNeoEngine(model: model)
        let tokens = expected.cases[3].tokens
        let out = try engine.forward([
            ForwardItem(cache: engine.makeCache(capacity: 20), tokens: tokens, hiddenRows: .none, logitRows: .none),
            ForwardItem(cache: engine.makeCache(capacity: 20), tokens: tokens, hiddenRows: .last, logitRows: .all),
            ForwardItem(cache: engine.makeCache(capacity: 20), tokens: [], hiddenRows: .all, logitRows: .all),
        ])
        XCTAssertEqual(out.map(\.hidden.count), [0, model.config.hiddenSize, 0])
        XCTAssertEqual(out.map(\.logits.count), [0, tokens.count * vocab, 0])
    }
}
