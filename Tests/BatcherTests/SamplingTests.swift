import XCTest
@testable import Batcher

final class SamplingTests: XCTestCase {
    private func sampler(_ configure: (inout GenerationParameters) -> Void, seed: UInt64 = 1) -> TokenSampler {
        var parameters = GenerationParameters()
        configure(&parameters)
        return TokenSampler(parameters: parameters, generator: Xoshiro256StarStar(seed: seed))
    }

    private func sample(_ sampler: inout TokenSampler, _ logits: [Float], history: TokenHistory? = nil) -> Int {
        let scratch = SamplingScratch(vocabularySize: logits.count)
        return logits.withUnsafeBufferPointer {
            sampler.sample(logits: $0, history: history ?? TokenHistory(promptTokens: [], tracksSeenTokens: false), scratch: scratch)
        }
    }

    // MARK: - Against transformers' processors

    func testRepetitionPenaltyMatchesTransformers() {
        for (index, reference) in Fixtures.expected.processors.enumerated() {
            let sampler = sampler { $0.repetitionPenalty = reference.repetition_penalty }
            var logits = reference.logits
            let history = TokenHistory(promptTokens: reference.history, tracksSeenTokens: true)
            logits.withUnsafeMutableBufferPointer { sampler.applyPenalties(to: $0, history: history) }
            XCTAssertEqual(logits.map(\.bitPattern), reference.penalized.map(\.bitPattern),
                           "case \(index): \(firstMismatches(logits, reference.penalized))")
        }
    }

    func testTemperatureTopKTopPKeepWhatTransformersKeeps() {
        for (index, reference) in Fixtures.expected.processors.enumerated() {
            let sampler = sampler {
                $0.temperature = reference.temperature; $0.topK = reference.top_k; $0.topP = reference.top_p
            }
            let kept = reference.logits.withUnsafeBufferPointer { sampler.keptTokens($0) }
            XCTAssertEqual(kept.sorted(), reference.kept,
                           "case \(index) (T \(reference.temperature), k \(reference.top_k), p \(reference.top_p))")
        }
    }

    // MARK: - OpenAI's penalties and bias

    func testPresenceAndFrequencyPenaltiesFollowOpenAIsFormula() {
        let sampler = sampler { $0.presencePenalty = 0.5; $0.frequencyPenalty = 0.25 }
        var history = TokenHistory(promptTokens: [0, 1, 2], tracksSeenTokens: false)  // the prompt does not count
        for token in [3, 3, 3, 4] { history.append(token) }
        var logits: [Float] = [1, 1, 1, 1, 1, 1]
        logits.withUnsafeMutableBufferPointer { sampler.applyPenalties(to: $0, history: history) }
        // mu[j] -= c[j] * frequency + (c[j] > 0) * presence
        XCTAssertEqual(logits, [1, 1, 1, 1 - 3 * 0.25 - 0.5, 1 - 0.25 - 0.5, 1])
    }

    func testLogitBiasSteersGreedyChoice() {
        var greedy = sampler { $0.temperature = 0 }
        XCTAssertEqual(sample(&greedy, [0, 3, 2]), 1)
        var biased = sampler { $0.temperature = 0; $0.logitBias = [1: -100, 2: 0.5] }
        XCTAssertEqual(sample(&biased, [0, 3, 2]), 2)
        var banned = sampler { $0.temperature = 1; $0.logitBias = [0: -100, 1: -100] }
        for _ in 0..<100 { XCTAssertEqual(sample(&banned, [0, 3, 2]), 2) }
    }

    // MARK: - Drawing

    func testGreedyTakesTheFirstOfTiedMaxima() {
        var greedy = sampler { $0.temperature = 0 }
        XCTAssertEqual(sample(&greedy, [1, 5, 2, 5]), 1)
    }

    func testTopKOneAndTinyTopPAreGreedy() {
        let logits: [Float] = [0.3, 2.0, 1.9, -1, 0.7]
        var topK = sampler({ $0.topK = 1 }, seed: 3)
        var topP = sampler({ $0.topP = 0.01 }, seed: 3)
        for _ in 0..<50 {
            XCTAssertEqual(sample(&topK, logits), 1)
            XCTAssertEqual(sample(&topP, logits), 1)
        }
    }

    func testSampledFrequenciesFollowTheSoftmax() {
        let logits: [Float] = [0, log(2), log(3), log(4)]  // probabilities 0.1, 0.2, 0.3, 0.4
        var sampler = sampler({ $0.temperature = 1 }, seed: 11)
        var counts = [0, 0, 0, 0]
        let draws = 40_000
        for _ in 0..<draws { counts[sample(&sampler, logits)] += 1 }
        for (token, count) in counts.enumerated() {
            let expected = Double(token + 1) / 10 * Double(draws)
            XCTAssertLessThan(abs(Double(count) - expected), 5 * expected.squareRoot(), "token \(token): \(counts)")
        }
    }

    func testSameSeedSameDraws() {
        let logits: [Float] = (0..<1000).map { Float(sin(Double($0))) * 3 }
        var a = sampler({ $0.topP = 0.9; $0.temperature = 0.8 }, seed: 5)
        var b = sampler({ $0.topP = 0.9; $0.temperature = 0.8 }, seed: 5)
        let first = (0..<100).map { _ in sample(&a, logits) }
        XCTAssertEqual(first, (0..<100).map { _ in sample(&b, logits) })
        XCTAssertGreaterThan(Set(first).count, 5, "a temperature-0.8 draw should vary")
    }
}
