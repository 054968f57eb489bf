import Foundation
import XCTest

@testable import GPTNeo

/// Task heads: loading (checkpoint directory and extra head files), validation, and logits on the engine's
/// hidden states against transformers' GPTNeoFor{Sequence,Token}Classification / ForQuestionAnswering.
final class HeadsTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let body = fixtures.appendingPathComponent("tiny-gpt-neo")
    static let heads = fixtures.appendingPathComponent("heads")

    static func json(_ name: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: heads.appendingPathComponent(name))) as! [String: Any]
    }

    func loadAll() throws -> TaskHeads {
        let extra = try HeadsConfiguration.load(from: Self.heads.appendingPathComponent("heads.json"))
        return try TaskHeads.load(model: Shared.model, extra: extra)
    }

    // MARK: - Loading

    func testOneBodyCarriesAllThreeHeadsFromExtraFiles() throws {
        let heads = try loadAll()
        XCTAssertEqual(heads.kinds, [.sequenceClassification, .tokenClassification, .questionAnswering])
        XCTAssertEqual(heads.sequenceClassification?.labels, ["negative", "neutral", "positive"])
        XCTAssertEqual(heads.sequenceClassification?.padTokenID, 50256)
        XCTAssertEqual(heads.tokenClassification?.labels, ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
        XCTAssertEqual(heads.questionAnswering?.linear.outputs, 2)
        XCTAssertNotNil(heads.tokenClassification?.linear.bias)
        XCTAssertNil(heads.sequenceClassification?.linear.bias)
    }

    func testTheBodyAloneHasNoHeads() throws {
        XCTAssertEqual(try TaskHeads.load(model: Shared.model).kinds, [])
    }

    func testACheckpointDirectoryBringsItsOwnHeadAndLabels() throws {
        // A sharded GPTNeoForSequenceClassification checkpoint: the body's file and the head's, with an index.
        let directory = try temporaryDirectory()
        let fm = FileManager.default
        try fm.copyItem(at: Self.heads.appendingPathComponent("sequence-checkpoint/config.json"),
                        to: directory.appendingPathComponent("config.json"))
        try fm.createSymbolicLink(at: directory.appendingPathComponent("model-00001-of-00002.safetensors"),
                                  withDestinationURL: Self.body.appendingPathComponent("model.safetensors"))
        try fm.copyItem(at: Self.heads.appendingPathComponent("score.safetensors"),
                        to: directory.appendingPathComponent("model-00002-of-00002.safetensors"))
        var weightMap = ["score.weight": "model-00002-of-00002.safetensors"]
        for name in try SafeTensorsFile(path: Self.body.appendingPathComponent("model.safetensors").path).tensors.keys {
            weightMap[name] = "model-00001-of-00002.safetensors"
        }
        try JSONSerialization.data(withJSONObject: ["metadata": [:], "weight_map": weightMap])
            .write(to: directory.appendingPathComponent("model.safetensors.index.json"))
        // The engine serves the body of that checkpoint, and the head comes with it.
        let model = try GPTNeoModel.load(directory: directory)
        XCTAssertEqual(model.config.labels, [0: "negative", 1: "neutral", 2: "positive"])
        let heads = try TaskHeads.load(model: model)
        XCTAssertEqual(heads.kinds, [.sequenceClassification])
        XCTAssertEqual(heads.sequenceClassification?.labels, ["negative", "neutral", "positive"])
        XCTAssertEqual(heads.sequenceClassification?.padTokenID, 50256)
        // The same kind again from an extra file is ambiguous.
        let extra = HeadsConfiguration(heads: [.init(task: .sequenceClassification, file: "score.safetensors")], baseDirectory: Self.heads)
        XCTAssertThrowsError(try TaskHeads.load(model: model, extra: extra)) {
            XCTAssertEqual($0 as? HeadsError, .duplicateHead(.sequenceClassification))
        }
    }

    func testBadHeadsFailAtLoadWithTheTensorNamed() throws {
        func load(_ head: ExtraHeadFile, hiddenSize: Int = 64) throws -> TaskHeads {
            var config = Shared.model.config
            config.hiddenSize = hiddenSize
            return try TaskHeads.load(config: config, checkpoint: Shared.model.checkpoint,
                                      extra: HeadsConfiguration(heads: [head], baseDirectory: Self.heads))
        }
        XCTAssertThrowsError(try load(.init(task: .tokenClassification, file: "classifier.safetensors"), hiddenSize: 32)) {
            XCTAssertEqual($0 as? HeadsError, .shapeMismatch(tensor: "classifier.weight", expected: [-1, 32], actual: [5, 64]))
        }
        XCTAssertThrowsError(try load(.init(task: .tokenClassification, file: "classifier.safetensors", labels: ["O", "B-X"]))) {
            XCTAssertEqual($0 as? HeadsError, .labelCountMismatch(head: .tokenClassification, labels: 2, outputs: 5))
        }
        XCTAssertThrowsError(try load(.init(task: .questionAnswering, file: "score.safetensors"))) {
            XCTAssertEqual($0 as? HeadsError, .missingTensor(tensor: "qa_outputs.weight", path: Self.heads.appendingPathComponent("score.safetensors").path))
        }
        XCTAssertThrowsError(try load(.init(task: .questionAnswering, file: "absent.safetensors"))) {
            guard case .fileMissing = $0 as? EngineError else { return XCTFail("\($0)") }
        }
        let garbage = try temporaryDirectory().appendingPathComponent("bad.safetensors")
        try Data([0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 1, 2]).write(to: garbage)
        XCTAssertThrowsError(try load(.init(task: .questionAnswering, file: garbage.path))) {
            guard case .headerBeyondFile = $0 as? EngineError else { return XCTFail("\($0)") }
        }
        let config = try temporaryDirectory().appendingPathComponent("heads.json")
        try Data(#"{"heads": [{"task": "summarization", "file": "x"}]}"#.utf8).write(to: config)
        XCTAssertThrowsError(try HeadsConfiguration.load(from: config)) {
            guard case .malformedConfiguration = $0 as? HeadsError else { return XCTFail("\($0)") }
        }
    }

    func testSequenceRowIsTheLastNonPaddingToken() {
        let linear = LinearHead(weight: [1, 0], bias: nil, outputs: 1, inputs: 2)
        let withPad = SequenceClassificationHead(linear: linear, labels: ["a"], problemType: nil, padTokenID: 50256)
        XCTAssertEqual(withPad.classificationRow(tokens: [5, 6, 50256]), 1)
        XCTAssertEqual(withPad.classificationRow(tokens: [50256, 7, 50256, 50256]), 1)
        XCTAssertEqual(withPad.classificationRow(tokens: [50256, 50256]), 0)
        let noPad = SequenceClassificationHead(linear: linear, labels: ["a"], problemType: nil, padTokenID: nil)
        XCTAssertEqual(noPad.classificationRow(tokens: [5, 6, 50256]), 2)
        XCTAssertThrowsError(try withPad.logits(hidden: [1, 2, 3], tokens: [1, 2]))
    }

    // MARK: - Logits on the engine's hidden states

    func hiddenStates(_ engine: GPTNeoEngine, _ tokens: [Int]) throws -> [Float] {
        let item = ForwardItem(cache: engine.makeCache(capacity: tokens.count), tokens: tokens, hiddenRows: .all, logitRows: .none)
        return try engine.forward([item])[0].hidden
    }

    func testHeadLogitsMatchTransformers() throws {
        let heads = try loadAll()
        let engine = GPTNeoEngine(model: try GPTNeoModel.load(directory: Self.body))
        var worst: [String: Float] = [:]
        func compare(_ got: [Float], _ want: [Double], _ what: String) {
            XCTAssertEqual(got.count, want.count, what)
            var firstMismatches: [String] = []
            for (i, (g, w)) in zip(got, want).enumerated() {
                let deviation = abs(g - Float(w))
                worst[what.components(separatedBy: " ")[0], default: 0] = max(worst[what.components(separatedBy: " ")[0], default: 0], deviation)
                if deviation > 1e-4 && firstMismatches.count < 5 { firstMismatches.append("[\(i)] \(g) vs \(w)") }
            }
            XCTAssertTrue(firstMismatches.isEmpty, "\(what): \(firstMismatches)")
        }
        for case let c as [String: Any] in try Self.json("expected_classification.json")["cases"] as! [Any] {
            let tokens = c["token_ids"] as! [Int]
            let logits = try heads.sequenceClassification!.logits(hidden: try hiddenStates(engine, tokens), tokens: tokens)
            compare(logits, c["logits"] as! [Double], "sequence \(c["text"]!)")
        }
        for case let c as [String: Any] in try Self.json("expected_token_classification.json")["cases"] as! [Any] {
            let tokens = c["token_ids"] as! [Int]
            let logits = try heads.tokenClassification!.logits(hidden: try hiddenStates(engine, tokens), rows: tokens.count)
            compare(logits, c["logits"] as! [Double], "token \(c["text"]!)")
        }
        for case let c as [String: Any] in try Self.json("expected_question_answering.json")["cases"] as! [Any] {
            for case let run as [String: Any] in (c["runs"] as! [Any]).prefix(1) {
                for case let window as [String: Any] in run["windows"] as! [Any] {
                    let tokens = window["input_ids"] as! [Int]
                    let (start, end) = try heads.questionAnswering!.logits(hidden: try hiddenStates(engine, tokens), rows: tokens.count)
                    compare(start, window["start_logits"] as! [Double], "qa-start \(c["question"]!)")
                    compare(end, window["end_logits"] as! [Double], "qa-end \(c["question"]!)")
                }
            }
        }
        print("head logits, max deviation from transformers: \(worst)")
    }

    // MARK: - Helpers

    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("heads-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }
}
