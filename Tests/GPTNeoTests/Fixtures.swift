import Foundation
import XCTest
@testable import GPTNeo

// MARK: - Fixture files

/// Tests/Fixtures, found from this file's location so tests run from any working directory.
let fixturesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures")
let tinyCheckpoint = fixturesDirectory.appendingPathComponent("tiny-gpt-neo")

/// Tests/Fixtures/engine/expected.json, written by scripts/fixtures/generate_engine_fixtures.py.
struct ExpectedValues: Decodable {
    struct Case: Decodable {
        var tokens: [Int]
        /// (T, C) final hidden states after ln_f.
        var hidden: [Float]
        /// (T, logitSubsetIDs.count) logits at those vocabulary ids.
        var logitSubset: [Float]
        var logsumexp: [Float]
        var argmax: [Int]
        var fullLogitsLast: [Float]?
        enum CodingKeys: String, CodingKey {
            case tokens, hidden, logsumexp, argmax
            case logitSubset = "logit_subset", fullLogitsLast = "full_logits_last"
        }
    }
    struct Generation: Decodable {
        var prompt: [Int]
        var continuation: [Int]
    }
    var transformersVersion: String
    var hiddenSize: Int
    var vocabSize: Int
    var logitSubsetIDs: [Int]
    var cases: [Case]
    var generations: [Generation]
    enum CodingKeys: String, CodingKey {
        case cases, generations
        case transformersVersion = "transformers_version", hiddenSize = "hidden_size", vocabSize = "vocab_size"
        case logitSubsetIDs = "logit_subset_ids"
    }
}

/// Loaded once for the whole test run.
enum Shared {
    /// The file is F16, kept so in memory (`auto`), as the server serves it by default.
    static let model: GPTNeoModel = try! GPTNeoModel.load(directory: tinyCheckpoint)
    static let expected: ExpectedValues = {
        let data = try! Data(contentsOf: fixturesDirectory.appendingPathComponent("engine/expected.json"))
        return try! JSONDecoder().decode(ExpectedValues.self, from: data)
    }()
}

/// Tolerance of the issue: max |Δ| against transformers on every position.
let referenceTolerance: Float = 1e-4

// MARK: - Comparison

/// Fails with the first few mismatches (index, got, expected) when any |Δ| exceeds `tolerance`;
/// returns the largest |Δ|.
@discardableResult
func assertClose(_ actual: [Float], _ expected: [Float], tolerance: Float, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) -> Float {
    guard actual.count == expected.count else {
        XCTFail("\(what): \(actual.count) values, expected \(expected.count)", file: file, line: line)
        return .infinity
    }
    var worst: Float = 0
    var mismatches: [String] = []
    for i in actual.indices {
        let delta = abs(actual[i] - expected[i])
        if !(delta <= tolerance) && mismatches.count < 5 { mismatches.append("[\(i)] \(actual[i]) vs \(expected[i])") }
        if !(delta <= worst) { worst = delta.isNaN ? .infinity : delta }
    }
    if !mismatches.isEmpty {
        XCTFail("\(what): max |Δ| \(worst) > \(tolerance); first mismatches: \(mismatches.joined(separator: ", "))",
                file: file, line: line)
    }
    return worst
}

/// Fails with the first differing index when two arrays are not bitwise equal.
func assertBitwiseEqual(_ actual: [Float], _ expected: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    guard actual.count == expected.count else {
        XCTFail("\(what): \(actual.count) values vs \(expected.count)", file: file, line: line); return
    }
    if let i = actual.indices.first(where: { actual[$0].bitPattern != expected[$0].bitPattern }) {
        let differing = actual.indices.filter { actual[$0].bitPattern != expected[$0].bitPattern }.count
        XCTFail("\(what): \(differing) values differ bitwise; first [\(i)] \(actual[i]) vs \(expected[i])", file: file, line: line)
    }
}

/// Per row of a (rows, V) logits array: the logits at `ids`, the log-sum-exp, the argmax (first on ties).
func summarize(_ logits: [Float], vocab: Int, ids: [Int]) -> (subset: [Float], logsumexp: [Float], argmax: [Int]) {
    var subset: [Float] = [], lse: [Float] = [], argmax: [Int] = []
    logits.withUnsafeBufferPointer { all in
        for r in 0..<(all.count / vocab) {
            let row = UnsafeBufferPointer(rebasing: all[(r * vocab)..<((r + 1) * vocab)])
            subset += ids.map { row[$0] }
            var best = 0
            for i in 1..<vocab where row[i] > row[best] { best = i }
            argmax.append(best)
            let top = Double(row[best])
            var total = 0.0
            for value in row { total += Foundation.exp(Double(value) - top) }
            lse.append(Float(top + Foundation.log(total)))
        }
    }
    return (subset, lse, argmax)
}

/// Argmax (first on ties), like torch.argmax for greedy decoding.
func argmax(_ row: ArraySlice<Float>) -> Int {
    var best = row.startIndex
    for i in row.indices where row[i] > row[best] { best = i }
    return best - row.startIndex
}
