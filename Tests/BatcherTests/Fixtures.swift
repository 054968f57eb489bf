import Foundation

// MARK: - Reference values written by scripts/fixtures/generate_batcher_fixtures.py

enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let tinyModel = root.appendingPathComponent("tiny-gpt-neo")

    struct Scored: Decodable {
        var token: Int
        var logprob: Float
        var top_ids: [Int]
        var top_logprobs: [Float]
    }

    struct Processor: Decodable {
        var logits: [Float]
        var history: [Int]
        var repetition_penalty: Double
        var penalized: [Float]
        var temperature: Double
        var top_k: Int
        var top_p: Double
        var kept: [Int]
    }

    struct Generation: Decodable {
        var prompt: [Int]
        var max_tokens: Int
        var repetition_penalty: Double
        var continuation: [Int]
        var finish_reason: String
        var text: String
        var prompt_logprobs: [Scored]
        var completion_logprobs: [Scored]
    }

    struct Stop: Decodable {
        var prompt: [Int]
        var max_tokens: Int
        var stop: String
        var text: String
        var completion_tokens: Int
    }

    struct Expected: Decodable {
        var transformers_version: String
        var top: Int
        var processors: [Processor]
        var generations: [Generation]
        var stops: [Stop]
    }

    /// The engine's fixture (scripts/fixtures/generate_engine_fixtures.py): 64-token greedy continuations
    /// from `generate(do_sample=False, eos_token_id=None)`.
    struct EngineExpected: Decodable {
        struct Generation: Decodable {
            var prompt: [Int]
            var continuation: [Int]
        }
        /// Final hidden states (after ln_f) of every position, as transformers computes them.
        struct Case: Decodable {
            var tokens: [Int]
            var hidden: [Float]
        }
        var generations: [Generation]
        var cases: [Case]
    }

    static let engineExpected: EngineExpected = {
        let url = root.appendingPathComponent("engine/expected.json")
        do {
            return try JSONDecoder().decode(EngineExpected.self, from: Data(contentsOf: url))
        } catch {
            fatalError("cannot read \(url.path): \(error)")
        }
    }()

    static let expected: Expected = {
        let url = root.appendingPathComponent("batcher/expected.json")
        do {
            return try JSONDecoder().decode(Expected.self, from: Data(contentsOf: url))
        } catch {
            fatalError("cannot read \(url.path): \(error); run scripts/fixtures/generate_batcher_fixtures.py")
        }
    }()
}
