import Foundation
import XCTest
@testable import GPTNeo

/// One small checkpoint in every layout (Tests/Fixtures/checkpoints, written by
/// scripts/fixtures/generate_checkpoint_fixtures.py): safetensors F32/F16/BF16, pytorch_model.bin single,
/// sharded and BF16, and task-head checkpoints as .bin. The weights are exact in every dtype, so every copy
/// must give bitwise the logits of the F32 safetensors copy, which is within 1e-4 of transformers.
final class CheckpointFormatTests: XCTestCase {
    static let directory = fixturesDirectory.appendingPathComponent("checkpoints")

    struct Expected: Decodable {
        var tokens: [Int]
        var vocabSize: Int
        var logits: [Float]
        var heads: [String: [Float]]
        enum CodingKeys: String, CodingKey { case tokens, logits, heads, vocabSize = "vocab_size" }
    }
    static let expected: Expected = try! JSONDecoder().decode(
        Expected.self, from: Data(contentsOf: directory.appendingPathComponent("expected.json")))

    static func load(_ layout: String) throws -> GPTNeoModel {
        try GPTNeoModel.load(directory: directory.appendingPathComponent(layout))
    }

    /// Logits (or hidden states) at every position of the fixture's tokens.
    static func forward(_ model: GPTNeoModel, hidden: Bool = false) throws -> [Float] {
        let engine = GPTNeoEngine(model: model)
        let tokens = expected.tokens
        let item = ForwardItem(cache: engine.makeCache(capacity: tokens.count), tokens: tokens,
                               hiddenRows: hidden ? .all : .none, logitRows: hidden ? .none : .all)
        let output = try engine.forward([item])[0]
        return hidden ? output.hidden : output.logits
    }

    func testF32SafetensorsMatchesTransformers() throws {
        let worst = assertClose(try Self.forward(try Self.load("f32")), Self.expected.logits, tolerance: referenceTolerance, "f32 vs transformers")
        print("f32 safetensors: max |Δ| vs transformers \(worst)")
    }

    func testEveryLayoutGivesBitwiseTheLogitsOfTheF32Copy() throws {
        let reference = try Self.forward(try Self.load("f32"))
        for layout in ["f16", "bf16", "bin", "bin-sharded", "bin-bf16"] {
            assertBitwiseEqual(try Self.forward(try Self.load(layout)), reference, layout)
        }
    }

    func testPyTorchViewsKeepTheirOffsetsAndStrides() throws {
        let model = try Self.load("bin")
        let checkpoint = model.checkpoint
        // q, k, v are views of one stacked storage; c_fc's weight is a transposed (non-contiguous) view.
        let q = try XCTUnwrap(checkpoint.stored("h.0.attn.attention.q_proj.weight"))
        let k = try XCTUnwrap(checkpoint.stored("h.0.attn.attention.k_proj.weight"))
        XCTAssertEqual(k.byteOffset - q.byteOffset, 32 * 32 * 4)
        let fc = try XCTUnwrap(checkpoint.stored("h.0.mlp.c_fc.weight"))
        XCTAssertEqual(fc.strides, [1, 128])
        XCTAssertFalse(fc.isContiguous)
        // The gathered copy equals the safetensors copy; contiguous F32 elements point into the mapping.
        let safetensors = try Self.load("f32").checkpoint
        assertBitwiseEqual(try checkpoint.tensor("h.0.mlp.c_fc.weight", shape: [128, 32]).array,
                           try safetensors.tensor("h.0.mlp.c_fc.weight", shape: [128, 32]).array, "strided copy")
        let file = try PyTorchFile(path: Self.directory.appendingPathComponent("bin/pytorch_model.bin").path)
        let wte = try file.elements("transformer.wte.weight")
        XCTAssertTrue((file.file.base..<(file.file.base + file.file.size)).contains(wte.first),
                      "a contiguous F32 tensor's elements are read in place")
        // lm_head.weight shares wte's storage, as in 2021 checkpoints; the mask buffers are BOOL and skipped.
        XCTAssertEqual(file.tensors["lm_head.weight"]?.byteOffset, file.tensors["transformer.wte.weight"]?.byteOffset)
        XCTAssertEqual(file.tensors["transformer.h.0.attn.attention.bias"]?.dtype, .bool)
    }

    func testTaskHeadsLoadFromPyTorchCheckpoints() throws {
        for (task, kind) in [("sequence-classification", TaskHeadKind.sequenceClassification),
                             ("token-classification", .tokenClassification), ("question-answering", .questionAnswering)] {
            let model = try Self.load(task)
            let heads = try TaskHeads.load(model: model)
            XCTAssertEqual(heads.kinds, [kind], task)
            let hidden = try Self.forward(model, hidden: true)
            let rows = Self.expected.tokens.count
            let logits: [Float]
            switch kind {
            case .sequenceClassification:
                XCTAssertEqual(heads.sequenceClassification?.labels, ["negative", "neutral", "positive"])
                logits = try heads.sequenceClassification!.logits(hidden: hidden, tokens: Self.expected.tokens)
            case .tokenClassification:
                logits = try heads.tokenClassification!.logits(hidden: hidden, rows: rows)
            case .questionAnswering:
                let (start, end) = try heads.questionAnswering!.logits(hidden: hidden, rows: rows)
                logits = zip(start, end).flatMap { [$0, $1] }
            }
            let worst = assertClose(logits, Self.expected.heads[task]!, tolerance: referenceTolerance, task)
            print("\(task) head from pytorch_model.bin: max |Δ| vs transformers \(worst)")
        }
    }

    func testExtraHeadFileMayBeAPyTorchFile() throws {
        let extra = HeadsConfiguration(heads: [.init(task: .tokenClassification, file: "token-classification/pytorch_model.bin")],
                                       baseDirectory: Self.directory)
        let heads = try TaskHeads.load(model: try Self.load("bf16"), extra: extra)
        XCTAssertEqual(heads.tokenClassification?.linear.outputs, 5)
    }

    func testHostileHeadFilesGiveErrorsNotTraps() throws {
        let temporary = try TemporaryCheckpoint()
        defer { temporary.remove() }
        // A shape whose byte count overflows, offsets past the data, a header length past the file.
        let files: [(String, [UInt8])] = [
            ("overflow.safetensors", safetensorsBytes([RawTensor(name: "score.weight", dtype: "F32", shape: [1 << 62, 8], bytes: [])])),
            ("offsets.safetensors", safetensorsBytes([.f32("score.weight", shape: [3, 64], values: [Float](repeating: 1, count: 192))],
                                                     offsetsOverride: ["score.weight": [0, 1 << 40]])),
            ("length.safetensors", safetensorsBytes([.f32("score.weight", shape: [1], values: [1])], declaredHeaderLength: UInt64.max)),
            ("short.bin", Array(try Data(contentsOf: Self.directory.appendingPathComponent("sequence-classification/pytorch_model.bin")).prefix(5000))),
        ]
        for (name, bytes) in files {
            try temporary.write(name, bytes)
            let extra = HeadsConfiguration(heads: [.init(task: .sequenceClassification, file: name)], baseDirectory: temporary.directory)
            XCTAssertThrowsError(try TaskHeads.load(model: Shared.model, extra: extra), name) { error in
                XCTAssertTrue(error is EngineError, "\(name): \(error)")
                XCTAssertTrue("\(error)".contains(name), "\(name): the message names the file: \(error)")
            }
        }
    }
}
