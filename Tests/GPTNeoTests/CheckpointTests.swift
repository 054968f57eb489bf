import Foundation
import XCTest
@testable import GPTNeo

/// Loading variants of the tiny checkpoint, good and broken; every broken one gives its error.
final class CheckpointTests: XCTestCase {
    var temporary: TemporaryCheckpoint!
    var path: String { temporary.directory.appendingPathComponent("model.safetensors").path }

    override func setUpWithError() throws { temporary = try TemporaryCheckpoint() }
    override func tearDown() { temporary.remove() }

    func load() throws -> GPTNeoModel { try GPTNeoModel.load(directory: temporary.directory) }

    /// Expects `load()` to throw exactly `expected`; prints the message for the log.
    func assertLoadFails(_ expected: EngineError, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try load(), file: file, line: line) { error in
            XCTAssertEqual(error as? EngineError, expected, file: file, line: line)
            print("expected error: \(error)")
        }
    }

    func writeWeights(_ tensors: [RawTensor]) throws { try temporary.write("model.safetensors", safetensorsBytes(tensors)) }

    /// Logits of one short sequence, to compare checkpoints that should compute the same.
    func logits(_ model: GPTNeoModel) throws -> [Float] {
        let engine = GPTNeoEngine(model: model)
        return try engine.forward([ForwardItem(cache: engine.makeCache(capacity: 12), tokens: Array(Shared.expected.cases[4].tokens.prefix(12)))])[0].logits
    }

    // MARK: Good variants

    func testLoadsWithoutTransformerPrefixAndIgnoresExtraTensors() throws {
        try temporary.writeConfig(TinyCheckpointSource.configText)
        var tensors = TinyCheckpointSource.rawTensors(rename: { $0.hasPrefix("transformer.") ? String($0.dropFirst(12)) : $0 })
        // Old checkpoints carry causal-mask buffers as BOOL / U8 and an untied copy of lm_head.
        tensors.append(RawTensor(name: "h.0.attn.attention.bias", dtype: "BOOL", shape: [2, 2], bytes: [1, 0, 1, 1]))
        tensors.append(RawTensor(name: "h.0.attn.attention.masked_bias", dtype: "F32", shape: [], bytes: [0, 0x28, 0x6e, 0xce]))
        try writeWeights(tensors)
        assertBitwiseEqual(try logits(try load()), try logits(Shared.model), "bare names vs fixture")
    }

    func testF32CheckpointIsUsedInPlaceAndMatches() throws {
        try temporary.writeConfig(TinyCheckpointSource.configText)
        try writeWeights(TinyCheckpointSource.rawTensors(encode: { .f32($0, shape: $1, values: $2) }))
        let model = try load()
        // Aligned F32 data is borrowed from the mapping, not copied.
        let file = try SafeTensorsFile(path: path)
        let tensor = try file.floatTensor("transformer.wte.weight")
        let mappedRange = file.file.base..<(file.file.base + file.file.size)
        XCTAssertTrue(mappedRange.contains(UnsafeRawPointer(tensor.pointer)), "F32 tensor should point into the mapping")
        assertBitwiseEqual(try logits(model), try logits(Shared.model), "F32 vs F16 checkpoint of the same values")
    }

    func testUnalignedF32IsCopiedCorrectly() throws {
        let values: [Float] = [1.5, -2.25, 3e-8, 65504, -0.0]
        let unpadded = safetensorsBytes([.f32("x", shape: [5], values: values)], headerPadding: 0).count - 20
        try temporary.write("model.safetensors", safetensorsBytes([.f32("x", shape: [5], values: values)], headerPadding: unpadded % 4 == 0 ? 1 : 0))
        let file = try SafeTensorsFile(path: path)
        XCTAssertNotEqual(file.dataStart % 4, 0)
        assertBitwiseEqual(try file.floatTensor("x").array, values, "unaligned F32")
    }

    func testBF16AndF16Conversion() throws {
        let values: [Float] = [1, -2, 0.5, 3.140625, -65280, 0]  // exact in both BF16 and F16
        try temporary.write("model.safetensors", safetensorsBytes([.bf16("b", shape: [2, 3], values: values), .f16("h", shape: [6], values: values)]))
        let file = try SafeTensorsFile(path: path)
        assertBitwiseEqual(try file.floatTensor("b").array, values, "BF16")
        assertBitwiseEqual(try file.floatTensor("h").array, values, "F16")
        XCTAssertEqual(try file.floatTensor("b").shape, [2, 3])
    }

    func testShardedCheckpointLoads() throws {
        try temporary.writeConfig(TinyCheckpointSource.configText)
        let tensors = TinyCheckpointSource.rawTensors()
        let half = tensors.count / 2
        try temporary.write("model-00001-of-00002.safetensors", safetensorsBytes(Array(tensors[..<half])))
        try temporary.write("model-00002-of-00002.safetensors", safetensorsBytes(Array(tensors[half...])))
        var weightMap: [String: String] = [:]
        for (i, tensor) in tensors.enumerated() { weightMap[tensor.name] = i < half ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors" }
        try temporary.write("model.safetensors.index.json", Array(try JSONSerialization.data(withJSONObject: ["metadata": [:], "weight_map": weightMap])))
        assertBitwiseEqual(try logits(try load()), try logits(Shared.model), "sharded vs single file")
    }

    func testCheckpointReaderForTaskHeads() throws {
        let checkpoint = Shared.model.checkpoint
        XCTAssertEqual(try checkpoint.tensor("ln_f.weight", shape: [64]).count, 64)
        XCTAssertEqual(try checkpoint.tensor("transformer.ln_f.bias", shape: [64]).count, 64)
        XCTAssertThrowsError(try checkpoint.tensor("score.weight", shape: [2, 64])) { error in
            XCTAssertEqual(error as? EngineError, .missingTensors(directory: tinyCheckpoint.path, names: ["score.weight"]))
        }
        XCTAssertThrowsError(try checkpoint.tensor("ln_f.weight", shape: [65])) { error in
            XCTAssertEqual(error as? EngineError, .wrongShapes(directory: tinyCheckpoint.path,
                                                               mismatches: [ShapeMismatch(tensor: "transformer.ln_f.weight", expected: [65], actual: [64])]))
        }
    }

    // MARK: Broken files

    func testMissingDirectoryFiles() throws {
        assertLoadFails(.fileMissing(path: temporary.directory.appendingPathComponent("config.json").path))
        try temporary.writeConfig(TinyCheckpointSource.configText)
        assertLoadFails(.noWeights(directory: temporary.directory.path, lookedFor: [
            "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"]))
    }

    func testLegacyPyTorchPickleCheckpointIsRefusedClearly() throws {
        try temporary.writeConfig(TinyCheckpointSource.configText)
        try FileManager.default.copyItem(at: fixturesDirectory.appendingPathComponent("checkpoints/legacy/pytorch_model.bin"),
                                         to: temporary.directory.appendingPathComponent("pytorch_model.bin"))
        XCTAssertThrowsError(try load()) { error in
            guard case .unsupportedFormat(let p, let reason)? = error as? EngineError else { return XCTFail("got \(error)") }
            XCTAssertTrue(reason.contains("legacy (pre-1.6, non-zip)") && reason.contains("torch.save(torch.load("), reason)
            XCTAssertEqual(p, self.temporary.directory.appendingPathComponent("pytorch_model.bin").path)
            print("expected error: \(error)")
        }
    }

    func testTruncatedFiles() throws {
        try temporary.writeConfig(TinyCheckpointSource.configText)
        let whole = safetensorsBytes(TinyCheckpointSource.rawTensors())
        try temporary.write("model.safetensors", Array(whole.prefix(5)))
        assertLoadFails(.truncatedFile(path: path, size: 5))
        try temporary.write("model.safetensors", [])
        assertLoadFails(.truncatedFile(path: path, size: 0))
        // Cut inside the header: the header length now points past the end.
        let headerLength = whole.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        try temporary.write("model.safetensors", Array(whole.prefix(100)))
        assertLoadFails(.headerBeyondFile(path: path, headerLength: headerLength, fileSize: 100))
        // Cut inside the data: the last tensor lies outside what is left.
        let cut = whole.count - 1000
        try temporary.write("model.safetensors", Array(whole.prefix(cut)))
        XCTAssertThrowsError(try load()) { error in
            guard case .tensorOutOfBounds(let p, _, _, _, let dataSize)? = error as? EngineError else {
                return XCTFail("expected tensorOutOfBounds, got \(error)")
            }
            XCTAssertEqual(p, path)
            XCTAssertEqual(dataSize, cut - 8 - Int(headerLength))
        }
    }

    func testHeaderLengthBeyondFile() throws {
        try temporary.writeConfig(TinyCheckpointSource.configText)
        let bytes = safetensorsBytes([.f32("x", shape: [2], values: [1, 2])], declaredHeaderLength: 1 << 40)
        try temporary.write("model.safetensors", bytes)
        assertLoadFails(.headerBeyondFile(path: path, headerLength: 1 << 40, fileSize: bytes.count))
    }

    func testMalformedHeader() throws {
        try temporary.writeConfig(TinyCheckpointSource.configText)
        let json = Array("{\"x\": {\"dtype\": \"F32\", \"shape\": [2]".utf8)
        try temporary.write("model.safetensors", withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json)
        XCTAssertThrowsError(try load()) { error in
            guard case .malformedHeader(let p, _)? = error as? EngineError else { return XCTFail("got \(error)") }
            XCTAssertEqual(p, path)
        }
        try temporary.write("model.safetensors", safetensorsBytes([RawTensor(name: "x", dtype: "F33", shape: [1], bytes: [0, 0, 0, 0])]))
        assertLoadFails(.malformedHeader(path: path, reason: "tensor x has unknown dtype F33"))
    }

    func testOffsetsOutsideData() throws {
        try temporary.writeConfig(TinyCheckpointSource.configText)
        let tensors: [RawTensor] = [.f32("a", shape: [2], values: [1, 2]), .f32("b", shape: [2], values: [3, 4])]
        try temporary.write("model.safetensors", safetensorsBytes(tensors, offsetsOverride: ["b": [8, 4104]]))
        assertLoadFails(.tensorOutOfBounds(path: path, tensor: "b", begin: 8, end: 4104, dataSize: 16))
        try temporary.write("model.safetensors", safetensorsBytes(tensors, offsetsOverride: ["b": [12, 8]]))
        assertLoadFails(.tensorOutOfBounds(path: path, tensor: "b", begin: 12, end: 8, dataSize: 16))
    }

    func testShapeTimesDTypeMismatch() throws {
        try temporary.writeConfig(TinyCheckpointSource.configText)
        try temporary.write("model.safetensors", safetensorsBytes([RawTensor(name: "a", dtype: "F32", shape: [3], bytes: [UInt8](repeating: 0, count: 8))]))
        assertLoadFails(.tensorSizeMismatch(path: path, tensor: "a", shape: [3], dtype: "F32", byteCount: 8))
        // A shape whose byte count overflows must not wrap around to a plausible size.
        try temporary.write("model.safetensors", safetensorsBytes([RawTensor(name: "a", dtype: "F32", shape: [1 << 62, 4], bytes: [])]))
        assertLoadFails(.tensorSizeMismatch(path: path, tensor: "a", shape: [1 << 62, 4], dtype: "F32", byteCount: 0))
    }

    func testUnsupportedDTypeOfNeededTensor() throws {
        try temporary.writeConfig(TinyCheckpointSource.configText)
        try writeWeights(TinyCheckpointSource.rawTensors(encode: { name, shape, values in
            name == "transformer.ln_f.bias" ? RawTensor(name: name, dtype: "I32", shape: shape, bytes: [UInt8](repeating: 0, count: 4 * values.count))
                : .f16(name, shape: shape, values: values)
        }))
        assertLoadFails(.unsupportedDType(path: path, tensor: "transformer.ln_f.bias", dtype: "I32"))
    }

    // MARK: Wrong contents

    func testAllMissingTensorsAreListedAtOnce() throws {
        try temporary.writeConfig(TinyCheckpointSource.configText)
        let dropped: Set = ["transformer.h.1.mlp.c_fc.bias", "transformer.wpe.weight", "transformer.h.3.attn.attention.q_proj.weight"]
        try writeWeights(TinyCheckpointSource.rawTensors(rename: { dropped.contains($0) ? nil : $0 }))
        assertLoadFails(.missingTensors(directory: temporary.directory.path, names: [
            "transformer.wpe.weight", "transformer.h.1.mlp.c_fc.bias", "transformer.h.3.attn.attention.q_proj.weight"]))
    }

    func testWrongShapesAreListed() throws {
        // A config saying 5 heads of width 65 would be rejected earlier; say the MLP is wider instead.
        try temporary.writeConfig(TinyCheckpointSource.config(replacing: "intermediate_size", with: "128"))
        try writeWeights(TinyCheckpointSource.rawTensors())
        XCTAssertThrowsError(try load()) { error in
            guard case .wrongShapes(_, let mismatches)? = error as? EngineError else { return XCTFail("got \(error)") }
            XCTAssertEqual(mismatches.count, 4 * 3, "c_fc weight and bias, c_proj weight per layer: \(mismatches)")
            XCTAssertEqual(mismatches.first, ShapeMismatch(tensor: "transformer.h.0.mlp.c_fc.weight", expected: [128, 64], actual: [256, 64]))
        }
    }

    func testUnknownActivation() throws {
        try temporary.writeConfig(TinyCheckpointSource.config(replacing: "activation_function", with: "\"swish\""))
        assertLoadFails(.unknownActivation(path: temporary.directory.appendingPathComponent("config.json").path, name: "swish"))
    }

    func testAttentionTypesDisagreeingWithAttentionLayers() throws {
        try temporary.writeConfig(TinyCheckpointSource.config(replacing: "attention_layers", with: "[\"global\",\"global\",\"global\",\"local\"]"))
        assertLoadFails(.attentionLayersMismatch(path: temporary.directory.appendingPathComponent("config.json").path,
                                                 fromAttentionTypes: ["global", "local", "global", "local"],
                                                 attentionLayers: ["global", "global", "global", "local"]))
    }
}
