import Foundation
import XCTest
@_spi(Benchmarks) @testable import GPTNeo

/// float16, bfloat16 and int8 weight storage (WeightStorage.swift): the checkpoints of
/// Tests/Fixtures/compact-weights (scripts/fixtures/generate_compact_weight_fixtures.py) and the int8
/// quantization against a plain computation. Batch and chunking invariance in every format: the
/// BatchInvarianceTests subclasses at the end.
final class CompactWeightTests: XCTestCase {
    static let directory = fixturesDirectory.appendingPathComponent("compact-weights")

    struct Expected: Decodable {
        var tokens: [Int]
        var vocabSize: Int
        var f32: [Float]
        var f16: [Float]
        var bf16: [Float]
        enum CodingKeys: String, CodingKey { case tokens, f32, f16, bf16, vocabSize = "vocab_size" }
    }
    static let expected: Expected = try! JSONDecoder().decode(
        Expected.self, from: Data(contentsOf: directory.appendingPathComponent("expected.json")))

    static func load(_ layout: String, _ settings: WeightSettings = WeightSettings()) throws -> GPTNeoModel {
        try GPTNeoModel.load(directory: directory.appendingPathComponent(layout), threads: 2, settings: settings)
    }

    /// log_softmax of the logits at every position of the fixture's tokens.
    static func logProbabilities(_ model: GPTNeoModel) throws -> [Float] {
        let engine = GPTNeoEngine(model: model)
        let tokens = expected.tokens
        let item = ForwardItem(cache: engine.makeCache(capacity: tokens.count), tokens: tokens, logitRows: .all)
        let logits = try engine.forward([item])[0].logits
        let V = expected.vocabSize
        var result: [Float] = []
        for row in 0..<tokens.count {
            let values = logits[(row * V)..<((row + 1) * V)].map(Double.init)
            let largest = values.max()!
            let logSum = largest + log(values.reduce(0) { $0 + exp($1 - largest) })
            result += values.map { Float($0 - logSum) }
        }
        return result
    }

    // MARK: 16-bit checkpoints

    /// An F16 (BF16) file stays 16-bit in memory under `auto` and computes what transformers computes in
    /// float32 on its upcast weights.
    func testSixteenBitCheckpointsKeepTheirDTypeAndMatchTransformers() throws {
        for (layout, format, reference) in [("f16", WeightFormat.float16, Self.expected.f16), ("bf16", .bfloat16, Self.expected.bf16)] {
            let model = try Self.load(layout)
            XCTAssertEqual(model.weightFormat, format, layout)
            let worst = assertClose(try Self.logProbabilities(model), reference, tolerance: referenceTolerance, "\(layout) vs transformers")
            print("\(layout) kept \(format): max |Δ logprob| vs transformers \(worst)")
        }
        XCTAssertEqual(try Self.load("f32").weightFormat, .float32)
    }

    /// Forcing float32 on a 16-bit file widens it: the same values, so bitwise the same results, at twice
    /// the matrix bytes.
    func testFloat32OfASixteenBitFileIsBitwiseTheSameFunction() throws {
        for layout in ["f16", "bf16"] {
            let kept = try Self.load(layout), widened = try Self.load(layout, WeightSettings(dtype: .float32))
            XCTAssertEqual(widened.weightFormat, .float32)
            assertBitwiseEqual(try Self.logProbabilities(widened), try Self.logProbabilities(kept), layout)
            // The float32 model's LM head also has its argmax guide (GreedyArgmax.swift).
            let widenedBytes = widened.weightBytes - (widened.weights.lmHeadGuide?.byteSize ?? 0)
            XCTAssertNotNil(widened.weights.lmHeadGuide)
            let vectorBytes = widenedBytes - 2 * (widenedBytes - kept.weightBytes)
            XCTAssertGreaterThan(vectorBytes, 0, "float32 matrices take twice the bytes of 16-bit ones")
        }
    }

    /// `--dtype float16` / `bfloat16` on a float32 checkpoint rounds each weight to nearest even as
    /// PyTorch's `.to()` does: every matrix row equals the one in the file transformers narrowed.
    func testNarrowingAtLoadRoundsAsPyTorch() throws {
        for (layout, dtype) in [("f16", WeightDType.float16), ("bf16", .bfloat16)] {
            let narrowed = try Self.load("f32", WeightSettings(dtype: dtype))
            let file = try Self.load(layout)
            for (index, (ours, theirs)) in zip(matrices(narrowed), matrices(file)).enumerated() {
                assertBitwiseEqual(rows(ours), rows(theirs), "\(layout) matrix \(index)")
            }
            // Narrowing changed something (the fixture's float32 weights are not already 16-bit values).
            XCTAssertNotEqual(rows(narrowed.weights.tokenEmbedding), rows(try Self.load("f32").weights.tokenEmbedding))
        }
    }

    func testBFloat16RoundingOfSpecialValues() {
        XCTAssertEqual(bfloat16Bits(1.0), 0x3F80)
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0x3F80_8000)), 0x3F80, "a tie rounds to even (down)")
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0x3F81_8000)), 0x3F82, "a tie rounds to even (up)")
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0x3F80_8001)), 0x3F81)
        XCTAssertEqual(bfloat16Bits(.infinity), 0x7F80)
        XCTAssertEqual(bfloat16Bits(-Float.greatestFiniteMagnitude), 0xFF80, "rounds up to -infinity as PyTorch does")
        XCTAssertTrue(Float(bitPattern: UInt32(bfloat16Bits(.nan)) << 16).isNaN, "NaN stays NaN")
    }

    // MARK: int8

    /// Per output row: scale = max |W[n, :]| / 127 and q = round(W / scale), so |W − q · scale| ≤ scale / 2;
    /// an all-zero row gets scale 0 and q = 0.
    func testInt8QuantizationIsSymmetricPerOutputChannel() {
        let (N, K) = (21, 40)
        var w = randomMatrix(N * K, seed: 11)
        for k in 0..<K { w[3 * K + k] = 0 }
        let weight = WeightMatrix(FloatTensor(shape: [N, K], values: w), format: .int8, threads: 1)
        var q = [Float](repeating: 0, count: K)
        for n in 0..<N {
            let scale = q.withUnsafeMutableBufferPointer { weight.storedRow(n, into: $0.baseAddress!) }
            let row = w[(n * K)..<((n + 1) * K)]
            XCTAssertEqual(scale, row.map(abs).max()! / 127, "row \(n)")
            XCTAssertEqual(q.map(abs).max()!, n == 3 ? 0 : 127, "row \(n): the largest weight maps to ±127")
            for k in 0..<K {
                XCTAssertEqual(q[k], q[k].rounded())
                XCTAssertLessThanOrEqual(abs(row[n * K + k] - q[k] * scale), scale / 2 * (1 + 1e-5), "row \(n) k \(k)")
            }
        }
        XCTAssertEqual(weight.byteSize, 2 * K * 16 + 2 * 16 * 4, "one byte per weight plus a float scale per output (whole panels)")
    }

    /// int8 on the fixture model stays close to float32 (a loose sanity bound; accuracy on a trained
    /// model is measured in the README's table).
    func testInt8ModelStaysCloseToFloat32() throws {
        let int8 = try Self.load("f32", WeightSettings(quantization: .int8))
        XCTAssertEqual(int8.weightFormat, .int8)
        let full = try Self.load("f32")
        XCTAssertLessThan(Double(int8.weightBytes), Double(full.weightBytes) * 0.4)
        assertClose(try Self.logProbabilities(int8), Self.expected.f32, tolerance: 0.1, "int8 vs float32 transformers")
    }

    func matrices(_ model: GPTNeoModel) -> [WeightMatrix] {
        var all = [model.weights.tokenEmbedding]
        for block in model.weights.blocks { all += [block.wqkv, block.wo, block.ffnUp, block.ffnDown] }
        return all
    }

    func rows(_ matrix: WeightMatrix) -> [Float] {
        var all = [Float](repeating: 0, count: matrix.outputs * matrix.inputs)
        all.withUnsafeMutableBufferPointer { out in
            for n in 0..<matrix.outputs { matrix.copyRow(n, into: out.baseAddress! + n * matrix.inputs) }
        }
        return all
    }
}

// MARK: - Batch and chunking invariance in every format

// BatchInvarianceTests' cases (a decode step at every batch size 1…64, prefill chunks of every length,
// chunks among other items) in every format: the tiny model's file is F16, which BatchInvarianceTests
// itself keeps (`auto`); here widened to float32, narrowed to bfloat16, quantized to int8.
// (Linux XCTest runs only the test methods a class declares, hence the overrides.)

final class Float32BatchInvarianceTests: BatchInvarianceTests {
    static let compactModel = try! GPTNeoModel.load(directory: tinyCheckpoint, settings: WeightSettings(dtype: .float32))
    override var model: GPTNeoModel { Self.compactModel }
    override func testDecodeStepOfEveryBatchSizeUpTo64() throws { try super.testDecodeStepOfEveryBatchSizeUpTo64() }
    override func testPrefillChunksOfEveryLengthGiveTheSameBits() throws { try super.testPrefillChunksOfEveryLengthGiveTheSameBits() }
    override func testPrefillChunksAreBatchInvariant() throws { try super.testPrefillChunksAreBatchInvariant() }
}

final class BFloat16BatchInvarianceTests: BatchInvarianceTests {
    static let compactModel = try! GPTNeoModel.load(directory: tinyCheckpoint, settings: WeightSettings(dtype: .bfloat16))
    override var model: GPTNeoModel { Self.compactModel }
    override func testDecodeStepOfEveryBatchSizeUpTo64() throws { try super.testDecodeStepOfEveryBatchSizeUpTo64() }
    override func testPrefillChunksOfEveryLengthGiveTheSameBits() throws { try super.testPrefillChunksOfEveryLengthGiveTheSameBits() }
    override func testPrefillChunksAreBatchInvariant() throws { try super.testPrefillChunksAreBatchInvariant() }
}

final class Int8BatchInvarianceTests: BatchInvarianceTests {
    static let compactModel = try! GPTNeoModel.load(directory: tinyCheckpoint, settings: WeightSettings(quantization: .int8))
    override var model: GPTNeoModel { Self.compactModel }
    override func testDecodeStepOfEveryBatchSizeUpTo64() throws { try super.testDecodeStepOfEveryBatchSizeUpTo64() }
    override func testPrefillChunksOfEveryLengthGiveTheSameBits() throws { try super.testPrefillChunksOfEveryLengthGiveTheSameBits() }
    override func testPrefillChunksAreBatchInvariant() throws { try super.testPrefillChunksAreBatchInvariant() }
}
