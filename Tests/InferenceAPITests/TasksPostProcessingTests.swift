import Foundation
import Tokenizer
import XCTest

@testable import InferenceAPI

/// The pipelines' post-processing, fed the head logits transformers computed (Tests/Fixtures/heads, written by
/// scripts/fixtures/generate_head_fixtures.py), must give the pipelines' labels, offsets and words exactly
/// and their scores within 1e-4.
final class TasksPostProcessingTests: XCTestCase {
    static let tolerance = 1e-4

    // MARK: - Text classification

    func testTextClassificationMatchesPipelineForEveryFunctionAndTopK() throws {
        let fixture = try HeadFixtures.load("expected_classification.json")
        let labels = fixture["labels"] as! [String]
        var checked = 0, worst = 0.0
        for case let c as [String: Any] in fixture["cases"] as! [Any] {
            let logits = (c["logits"] as! [Double]).map(Float.init)
            for case let variant as [String: Any] in c["variants"] as! [Any] {
                let parameters = variant["parameters"] as! [String: Any]
                let expected = variant["output"] as! [[String: Any]]
                let function = (parameters["function_to_apply"] as? String).map { ClassificationFunction(rawValue: $0)! }
                // Absent top_k: the pipeline's default (1); present and null: every label.
                let topK: Int? = parameters.keys.contains("top_k") ? parameters["top_k"] as? Int : 1
                let result = TextClassification.classify(
                    logits: logits, labels: labels, function: function,
                    problemType: variant["problem_type"] as? String, topK: topK)
                let context = "\(c["text"]!) \(parameters) \(variant["problem_type"] ?? "")"
                XCTAssertEqual(result.scores.map(\.label), expected.map { $0["label"] as! String }, context)
                XCTAssertEqual(result.label, expected[0]["label"] as? String, context)
                for (got, want) in zip(result.scores, expected) {
                    let deviation = abs(got.score - (want["score"] as! Double))
                    worst = max(worst, deviation)
                    XCTAssertLessThan(deviation, Self.tolerance, context)
                }
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 50)
        print("text classification: \(checked) variants, max score deviation \(worst)")
    }

    // MARK: - Token classification

    func testTokenClassificationMatchesPipelineForEveryStrategy() throws {
        let fixture = try HeadFixtures.load("expected_token_classification.json")
        let labels = fixture["labels"] as! [String]
        var checked = 0, worst = 0.0
        for case let c as [String: Any] in fixture["cases"] as! [Any] {
            let text = c["text"] as! String
            let ids = c["token_ids"] as! [Int]
            let offsets = c["offsets"] as! [[Int]]
            let spelled = Dictionary(zip(ids, c["tokens"] as! [String]), uniquingKeysWith: { a, _ in a })
            let tokens = zip(ids, offsets).map { TokenSpan(id: $0, start: $1[0], end: $1[1]) }
            let logits = (c["logits"] as! [Double]).map(Float.init)
            for case let run as [String: Any] in c["outputs"] as! [Any] {
                let parameters = run["parameters"] as! [String: Any]
                let strategy = AggregationStrategy(rawValue: parameters["aggregation_strategy"] as! String)!
                let ignore = parameters["ignore_labels"] as? [String] ?? ["O"]
                let got = TokenClassification.entities(
                    text: text, tokens: tokens, logits: logits, labels: labels,
                    tokenBytes: { id in spelled[id]!.unicodeScalars.map { ByteLevel.scalarToByte[$0]! } },
                    unknownTokenID: 50256, strategy: strategy, ignoreLabels: ignore)
                let expected = run["output"] as! [[String: Any]]
                let context = "\(text) \(parameters)"
                XCTAssertEqual(got.count, expected.count, context)
                for (g, e) in zip(got, expected) {
                    XCTAssertEqual(g.entity, e["entity"] as? String, context)
                    XCTAssertEqual(g.entityGroup, e["entity_group"] as? String, context)
                    XCTAssertEqual(g.word, e["word"] as? String, context)
                    XCTAssertEqual(g.start, e["start"] as? Int, context)
                    XCTAssertEqual(g.end, e["end"] as? Int, context)
                    XCTAssertEqual(g.index, e["index"] as? Int, context)
                    let deviation = abs(g.score - (e["score"] as! Double))
                    worst = max(worst, deviation)
                    XCTAssertLessThan(deviation, Self.tolerance, context)
                }
                checked += 1
            }
        }
        XCTAssertEqual(checked, 7 * 5 * 3)
        print("token classification: \(checked) runs, max score deviation \(worst)")
    }

    // MARK: - Question answering

    func testQuestionAnsweringWindowsAndAnswersMatchPipeline() throws {
        let fixture = try HeadFixtures.load("expected_question_answering.json")
        var checked = 0, worst = 0.0, sawSeveralWindows = false
        for case let c as [String: Any] in fixture["cases"] as! [Any] {
            let context = c["context"] as! String
            let questionIDs = c["question_ids"] as! [Int]
            let contextTokens = zip(c["context_ids"] as! [Int], c["context_offsets"] as! [[Int]]).map {
                TokenSpan(id: $0, start: $1[0], end: $1[1])
            }
            for case let run as [String: Any] in c["runs"] as! [Any] {
                let parameters = run["parameters"] as! [String: Any]
                var p = QuestionAnsweringParameters()
                p.topK = parameters["top_k"] as? Int ?? 1
                p.maxAnswerLength = parameters["max_answer_len"] as? Int ?? 15
                p.maxSequenceLength = parameters["max_seq_len"] as? Int ?? 384
                p.docStride = parameters["doc_stride"] as? Int ?? min(p.maxSequenceLength / 2, 128)
                p.handleImpossibleAnswer = parameters["handle_impossible_answer"] as? Bool ?? false
                let label = "\(c["question"]!) \(parameters)"
                let windows = try QuestionAnswering.windows(question: questionIDs, context: contextTokens.map(\.id), parameters: p)
                let expectedWindows = run["windows"] as! [[String: Any]]
                XCTAssertEqual(windows.map(\.tokens), expectedWindows.map { $0["input_ids"] as! [Int] }, label)
                guard windows.count == expectedWindows.count else { continue }
                sawSeveralWindows = sawSeveralWindows || windows.count > 1
                let answers = QuestionAnswering.answers(
                    context: context, questionTokenCount: questionIDs.count, contextTokens: contextTokens, windows: windows,
                    startLogits: expectedWindows.map { ($0["start_logits"] as! [Double]).map(Float.init) },
                    endLogits: expectedWindows.map { ($0["end_logits"] as! [Double]).map(Float.init) }, parameters: p)
                let expected = run["output"] as! [[String: Any]]
                XCTAssertEqual(answers.map(\.answer), expected.map { $0["answer"] as! String }, label)
                XCTAssertEqual(answers.map(\.start), expected.map { $0["start"] as! Int }, label)
                XCTAssertEqual(answers.map(\.end), expected.map { $0["end"] as! Int }, label)
                for (g, e) in zip(answers, expected) {
                    let deviation = abs(g.score - (e["score"] as! Double))
                    worst = max(worst, deviation)
                    XCTAssertLessThan(deviation, Self.tolerance, label)
                }
                checked += 1
            }
        }
        XCTAssertTrue(sawSeveralWindows, "a context longer than max_seq_len must be among the cases")
        XCTAssertEqual(checked, 20)
        print("question answering: \(checked) runs, max score deviation \(worst)")
    }

    func testQuestionAnsweringRejectsBadParameters() {
        var p = QuestionAnsweringParameters()
        p.maxSequenceLength = 4; p.docStride = 2
        XCTAssertThrowsError(try QuestionAnswering.windows(question: [1, 2, 3, 4], context: [5], parameters: p)) {
            XCTAssertEqual($0 as? QuestionAnsweringError, .questionTooLong(questionTokens: 4, maxSequenceLength: 4))
        }
        p = QuestionAnsweringParameters()
        p.topK = 0
        XCTAssertThrowsError(try QuestionAnswering.windows(question: [1], context: [5], parameters: p))
        p = QuestionAnsweringParameters()
        p.maxSequenceLength = 6; p.docStride = 5
        // 5 context tokens fit in a window of 6 - 1: no window split, so the stride does not matter.
        XCTAssertEqual(try QuestionAnswering.windows(question: [1], context: [2, 3, 4, 5, 6], parameters: p).count, 1)
        XCTAssertThrowsError(try QuestionAnswering.windows(question: [1], context: Array(0..<9), parameters: p))
        XCTAssertThrowsError(try QuestionAnswering.windows(question: [1], context: [], parameters: QuestionAnsweringParameters()))
    }

    // MARK: - Pieces

    func testPreTokenWordsFollowTheGPT2Pattern() {
        func pieces(_ text: String) -> [String] {
            let s = Array(text.unicodeScalars), starts = PreTokenWords.starts(of: text)
            return starts.indices.map { i in
                String(String.UnicodeScalarView(s[starts[i]..<(i + 1 < starts.count ? starts[i + 1] : s.count)]))
            }
        }
        XCTAssertEqual(pieces("I'll go  now,ok?? 123abc"), ["I", "'ll", " go", " ", " now", ",", "ok", "??", " 123", "abc"])
        XCTAssertEqual(pieces("a\n\nb  "), ["a", "\n", "\n", "b", "  "])
        XCTAssertEqual(pieces(" Zürich 東京"), [" Zürich", " 東京"])
    }

    func testByteLevelJoinFallsBackToUTF8ForCharactersOutsideTheTable() {
        XCTAssertEqual(ByteLevel.join(["ĠMont", "rÃ©", "al"]), " Montréal")
        // " Montréal" has a plain space, which is not in the table: taken as UTF-8.
        XCTAssertEqual(ByteLevel.join([" Montréal"]), " Montréal")
        // Every character in the table: the bytes are Latin-1 and invalid UTF-8, as tokenizers decodes them.
        XCTAssertEqual(ByteLevel.join(["café"]), "caf\u{FFFD}")
        XCTAssertEqual(ByteLevel.spell(Array(" é".utf8)), "ĠÃ©")
    }

    func testEmbeddingPoolingAndBase64() {
        let hidden: [Float] = [1, 2, 3, 4, 5, 6]  // 3 rows × 2
        XCTAssertEqual(Embeddings.pool(hidden: hidden, rows: 3, hiddenSize: 2, pooling: .mean, normalize: false), [3, 4])
        // weights 1, 2, 3 over 6: (1 + 6 + 15) / 6, (2 + 8 + 18) / 6
        let weighted = Embeddings.pool(hidden: hidden, rows: 3, hiddenSize: 2, pooling: .weightedmean, normalize: false)
        XCTAssertEqual(weighted[0], 22 / 6, accuracy: 1e-6)
        XCTAssertEqual(weighted[1], 28 / 6, accuracy: 1e-6)
        let last = Embeddings.pool(hidden: hidden, rows: 3, hiddenSize: 2, pooling: .last, normalize: true)
        XCTAssertEqual(last[0], 5 / Float(61).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(last[1], 6 / Float(61).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(Embeddings.pool(hidden: [0, 0], rows: 1, hiddenSize: 2, pooling: .last, normalize: true), [0, 0])
        XCTAssertEqual(Embeddings.base64([1, -2]), "AACAPwAAAMA=")
    }
}

/// Reads the JSON fixtures in Tests/Fixtures/heads.
enum HeadFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/heads")

    static func load(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }
}

extension TasksPostProcessingTests {
    /// The arithmetic count used to refuse early is the number of windows actually built.
    func testWindowLayoutCountsTheWindows() throws {
        var checked = 0
        for contextLength in [1, 2, 5, 17, 64, 100] {
            for question in 1...4 {
                for maxSequenceLength in [question + 1, 8, 16, 33] where maxSequenceLength > question {
                    for docStride in 0..<(maxSequenceLength - question) {
                        var p = QuestionAnsweringParameters()
                        p.maxSequenceLength = maxSequenceLength
                        p.docStride = docStride
                        let windows = try QuestionAnswering.windows(question: Array(repeating: 1, count: question), context: Array(0..<contextLength), parameters: p)
                        let layout = try QuestionAnswering.layout(questionTokens: question, contextTokens: contextLength, parameters: p)
                        XCTAssertEqual(layout.count, windows.count, "context \(contextLength) question \(question) max_seq_len \(maxSequenceLength) stride \(docStride)")
                        XCTAssertEqual(windows.last?.contextRange.upperBound, contextLength)
                        checked += 1
                    }
                }
            }
        }
        XCTAssertGreaterThan(checked, 500)
    }
}
