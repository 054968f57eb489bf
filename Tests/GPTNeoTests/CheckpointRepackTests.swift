import Foundation
import XCTest
@testable import GPTNeo

/// Weight matrices are repacked straight from the mapped checkpoint in its stored dtype (TensorElements,
/// WeightMatrix.fillPanels). Whatever the file stores and whatever format is asked for, the stored
/// panels must be bit for bit those made from the tensor read as float32 first (a widening that is
/// exact), and the file's pages must leave the resident set once read.
final class CheckpointRepackTests: XCTestCase {
    static let settings: [WeightSettings] = WeightDType.allCases.map { WeightSettings(dtype: $0) } + [WeightSettings(quantization: .int8)]

    /// Every compact-weights fixture (F32, F16, BF16) under every --dtype and --quantization: each matrix
    /// equals the one repacked from its float32 read, and the model computes the same bits.
    func testEveryStoredDTypeInEveryFormatEqualsTheRepackOfItsFloat32Read() throws {
        for layout in ["f32", "f16", "bf16"] {
            for settings in Self.settings {
                let what = "\(layout) \(settings.dtype.rawValue)/\(settings.quantization.rawValue)"
                let model = try CompactWeightTests.load(layout, settings)
                let reference = try floatReadModel(model)
                var compared = 0
                for (names, matrix) in namedMatrices(model) {
                    let widened = try stackedFloatReads(model, names, matrix)
                    assertSameStorage(matrix, widened, "\(what) \(names)")
                    compared += 1
                }
                XCTAssertEqual(compared, 1 + 4 * model.config.numLayers, what)
                assertBitwiseEqual(try CompactWeightTests.logProbabilities(model), try CompactWeightTests.logProbabilities(reference), what)
            }
        }
    }

    /// Layouts the in-place copy cannot take (16-bit data at an odd address, a transposed PyTorch view)
    /// are widened instead, with the same result; and every dtype/format pair of a matrix whose shape
    /// leaves a partial panel.
    func testUnalignedAndStridedTensorsRepackAsTheirFloat32Read() throws {
        let (N, K) = (37, 27)  // a partial panel, and rows not a multiple of the 8 widened at a time
        let values = randomMatrix(N * K, seed: 21)
        let transposed = (0..<K).flatMap { k in (0..<N).map { n in values[n * K + k] } }
        let temporary = try TemporaryCheckpoint()
        defer { temporary.remove() }
        var files: [(String, any TensorFile)] = []
        for padding in [0, 1] {
            let bytes = safetensorsBytes([.f16("h", shape: [N, K], values: values), .bf16("b", shape: [N, K], values: values),
                                          .f32("f", shape: [N, K], values: values)], headerPadding: 7 + padding)
            try temporary.write("padded\(padding).safetensors", bytes)
            files.append(("padding \(7 + padding)", try SafeTensorsFile(path: temporary.directory.appendingPathComponent("padded\(padding).safetensors").path)))
        }
        let half = transposed.flatMap { withUnsafeBytes(of: Float16($0).bitPattern.littleEndian, Array.init) }
        let pickle = PickleOps.stateDict([
            ("h", PickleOps.tensor(storage: "HalfStorage", key: "0", elements: N * K, offset: 0, shape: [N, K], strides: [1, N])),
        ])
        try temporary.write("view.bin", torchArchive(pickle: pickle, storages: ["0": half]))
        files.append(("transposed view", try PyTorchFile(path: temporary.directory.appendingPathComponent("view.bin").path)))

        for (what, file) in files {
            for name in file.tensors.keys.sorted() {
                for format in WeightFormat.allCases {
                    let direct = WeightMatrix(try file.elements(name), format: format, threads: 2)
                    let widened = WeightMatrix(try file.floatTensor(name), format: format, threads: 2)
                    XCTAssertEqual(direct.outputs, N); XCTAssertEqual(direct.inputs, K)
                    assertSameStorage(direct, widened, "\(what) \(name) as \(format)")
                    // Stacked with itself: 74 rows, a panel straddling the two.
                    let stacked = WeightMatrix(stacking: [try file.elements(name), try file.elements(name)], format: format, threads: 2)
                    let stackedWidened = WeightMatrix(stacking: [try file.floatTensor(name), try file.floatTensor(name)], format: format, threads: 2)
                    XCTAssertEqual(stacked.outputs, 2 * N)
                    assertSameStorage(stacked, stackedWidened, "\(what) \(name) stacked as \(format)")
                }
            }
        }
    }

    /// Every element lands where `panelOffset` says, read back one row at a time: panels of every float
    /// format from float32 data, 16-bit panels from 16-bit file data (the blocked transpose of whole
    /// panels), for K
    /// with a partial block of 16 k, an odd K (whose panel lines are not whole) and N with a partial panel.
    func testEveryElementLandsWherePanelOffsetSays() throws {
        let temporary = try TemporaryCheckpoint()
        defer { temporary.remove() }
        for (N, K) in [(37, 27), (48, 40), (32, 768)] {
            let values = randomMatrix(N * K, seed: UInt64(N + K)).map { Float(Float16($0)) }  // exact in every format
            try temporary.write("m\(N)x\(K).safetensors", safetensorsBytes([
                .f32("f", shape: [N, K], values: values), .f16("h", shape: [N, K], values: values),
                .bf16("b", shape: [N, K], values: values.map { Float(bitPattern: $0.bitPattern & 0xFFFF_0000) }),
            ]))
            let file = try SafeTensorsFile(path: temporary.directory.appendingPathComponent("m\(N)x\(K).safetensors").path)
            let bfloat16Values = values.map { Float(bitPattern: UInt32(bfloat16Bits($0)) << 16) }
            for (name, format) in [("f", WeightFormat.float32), ("f", .float16), ("f", .bfloat16), ("h", .float16), ("b", .bfloat16)] {
                let matrix = WeightMatrix(try file.elements(name), format: format, threads: 2)
                let expected = name == "b" ? values.map { Float(bitPattern: $0.bitPattern & 0xFFFF_0000) }
                    : name == "f" && format == .bfloat16 ? bfloat16Values : values
                var row = [Float](repeating: 0, count: K)
                for n in 0..<N {
                    _ = row.withUnsafeMutableBufferPointer { matrix.storedRow(n, into: $0.baseAddress!) }
                    XCTAssertEqual(row, Array(expected[(n * K)..<((n + 1) * K)]), "\(format) \(N)×\(K) row \(n)")
                }
            }
        }
    }

    /// A 16-bit matrix kept in its own dtype holds the file's bits (no rounding through another type).
    func testSixteenBitMatrixKeptInItsDTypeHoldsTheFileBits() throws {
        let model = try CompactWeightTests.load("f16")
        let stored = try XCTUnwrap(model.checkpoint.stored("transformer.wte.weight"))
        XCTAssertEqual(stored.dtype, .f16)
        let bits = try Data(contentsOf: CompactWeightTests.directory.appendingPathComponent("f16/model.safetensors"))
        let matrix = model.weights.tokenEmbedding
        guard case .float16Panels(let panels) = matrix.storage else { return XCTFail("kept as \(matrix.format)") }
        for n in [0, 1, matrix.outputs / 2, matrix.outputs - 1] {
            for k in [0, 1, matrix.inputs - 1] {
                let offset = stored.byteOffset + 2 * (n * matrix.inputs + k)
                let fileBits = UInt16(bits[offset]) | UInt16(bits[offset + 1]) << 8
                XCTAssertEqual(panels[(n / panelWidth) * matrix.inputs * panelWidth + k * panelWidth + n % panelWidth], fileBits, "W[\(n), \(k)]")
            }
        }
    }

    /// After a matrix is repacked, the pages of its mapped file no longer count in the process's resident
    /// memory (they would double the memory of a model otherwise).
    func testRepackedTensorsLeaveTheResidentSet() throws {
        #if os(Linux)
        let (N, K) = (512, 1024)  // 1 MiB of F16
        let temporary = try TemporaryCheckpoint()
        defer { temporary.remove() }
        try temporary.write("w.safetensors", safetensorsBytes([.f16("w", shape: [N, K], values: randomMatrix(N * K, seed: 5))]))
        let path = temporary.directory.appendingPathComponent("w.safetensors").path
        let file = try SafeTensorsFile(path: path)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: N * K)
        defer { scratch.deallocate() }
        for format in WeightFormat.allCases {
            let elements = try file.elements("w")
            elements.widenRows(0..<N, into: scratch)  // touches every page
            XCTAssertGreaterThan(try residentKilobytes(ofMapping: path), 1000, "reading maps the pages in")
            let matrix = WeightMatrix(elements, format: format, threads: 2)
            XCTAssertEqual(matrix.outputs, N)
            XCTAssertLessThanOrEqual(try residentKilobytes(ofMapping: path), 8, "\(format): pages left resident after repacking")
        }
        // A float32 copy read for a vector releases its pages too.
        _ = try file.floatTensor("w")
        XCTAssertLessThanOrEqual(try residentKilobytes(ofMapping: path), 8, "pages left resident after a float32 read")
        #endif
    }

    /// A small float32 vector (LayerNorm, bias) is copied (and its pages released): read in place, each
    /// would keep a 64 KiB window of the file resident. A large table (the position embeddings) stays in
    /// place, resident only where read.
    func testSmallFloat32TensorsAreCopiedAndLargeOnesReadInPlace() throws {
        #if os(Linux)
        let (rows, columns) = (512, 1024)  // 2 MiB of F32
        let temporary = try TemporaryCheckpoint()
        defer { temporary.remove() }
        let bias = randomMatrix(768, seed: 7), table = randomMatrix(rows * columns, seed: 8)
        try temporary.write("v.safetensors", safetensorsBytes([.f32("bias", shape: [768], values: bias),
                                                              .f32("table", shape: [rows, columns], values: table)]))
        let path = temporary.directory.appendingPathComponent("v.safetensors").path
        let file = try SafeTensorsFile(path: path)
        let mapped = UInt(bitPattern: file.file.base)..<(UInt(bitPattern: file.file.base) + UInt(file.file.size))
        let small = try file.floatTensor("bias"), large = try file.floatTensor("table")
        XCTAssertEqual(small.array, bias)
        XCTAssertEqual(large.array, table)
        XCTAssertFalse(mapped.contains(UInt(bitPattern: small.pointer)), "the vector was not copied")
        XCTAssertTrue(mapped.contains(UInt(bitPattern: large.pointer)), "the table was copied")
        #endif
    }

    /// `weightBytes` (what /v1/models and /metrics report) counts, from the config alone: each matrix once
    /// (the tied LM head is wte) in whole panels of 16 outputs at the format's element size, int8 scales,
    /// the float32 vectors and position table, and a float32 LM head's argmax guide.
    func testWeightBytesCountEveryKeptByteOnce() throws {
        for layout in ["f32", "f16"] {
            for settings in Self.settings {
                let model = try CompactWeightTests.load(layout, settings)
                let c = model.config, format = model.weightFormat
                func matrix(_ N: Int, _ K: Int) -> Int {
                    let padded = (N + panelWidth - 1) / panelWidth * panelWidth
                    let paddedK = format == .int8 ? (K + 3) / 4 * 4 : K  // int8 stores k in groups of 4
                    return padded * paddedK * format.elementBytes + (format == .int8 ? padded * MemoryLayout<Float>.size : 0)
                }
                let (C, I) = (c.hiddenSize, c.intermediateSize)
                let perLayer = matrix(3 * C, C) + matrix(C, C) + matrix(I, C) + matrix(C, I) + 4 * (6 * C + I)
                // A float32 LM head's argmax guide: an int8 copy (k in groups of 4, a scale per padded row) and
                // three norms per row.
                let paddedVocab = (c.vocabSize + panelWidth - 1) / panelWidth * panelWidth
                let guide = format == .float32 ? paddedVocab * ((C + 3) / 4 * 4 + 4) + 3 * 4 * c.vocabSize : 0
                let expected = matrix(c.vocabSize, C) + 4 * c.maxPositionEmbeddings * C + c.numLayers * perLayer + 4 * 2 * C + guide
                XCTAssertEqual(model.weightBytes, expected, "\(layout) as \(format)")
            }
        }
    }

    // MARK: Helpers

    /// `matrix` repacked from the float32 reads of the tensors it stacks.
    func stackedFloatReads(_ model: GPTNeoModel, _ names: [String], _ matrix: WeightMatrix) throws -> WeightMatrix {
        let rows = matrix.outputs / names.count
        return WeightMatrix(stacking: try names.map { try model.checkpoint.tensor($0, shape: [rows, matrix.inputs]) },
                            format: model.weightFormat, threads: 2)
    }

    /// The model with every matrix repacked from its float32 read.
    func floatReadModel(_ model: GPTNeoModel) throws -> GPTNeoModel {
        let w = model.weights
        let named = namedMatrices(model)
        let widened = try named.map { try stackedFloatReads(model, $0.0, $0.1) }
        let blocks = w.blocks.enumerated().map { layer, b in
            BlockWeights(
                attnNormWeight: b.attnNormWeight, attnNormBias: b.attnNormBias,
                wqkv: widened[1 + 4 * layer], wo: widened[2 + 4 * layer],
                bo: b.bo, ffnNormWeight: b.ffnNormWeight, ffnNormBias: b.ffnNormBias,
                ffnUp: widened[3 + 4 * layer], ffnUpBias: b.ffnUpBias,
                ffnDown: widened[4 + 4 * layer], ffnDownBias: b.ffnDownBias, kind: b.kind)
        }
        XCTAssertTrue(w.lmHead === w.tokenEmbedding, "the fixtures tie the LM head")
        let weights = ModelWeights(tokenEmbedding: widened[0], positionEmbedding: w.positionEmbedding, blocks: blocks,
                                   finalNormWeight: w.finalNormWeight, finalNormBias: w.finalNormBias, lmHead: widened[0], lmHeadGuide: nil)
        return GPTNeoModel(config: model.config, directory: model.directory, checkpoint: model.checkpoint, weights: weights,
                           format: model.weightFormat)
    }

    /// Every matrix with the checkpoint tensors it holds (q, k and v stacked in one).
    func namedMatrices(_ model: GPTNeoModel) -> [([String], WeightMatrix)] {
        var all = [(["transformer.wte.weight"], model.weights.tokenEmbedding)]
        for (layer, b) in model.weights.blocks.enumerated() {
            let p = "transformer.h.\(layer)."
            all += [(["q_proj", "k_proj", "v_proj"].map { p + "attn.attention.\($0).weight" }, b.wqkv),
                    ([p + "attn.attention.out_proj.weight"], b.wo), ([p + "mlp.c_fc.weight"], b.ffnUp), ([p + "mlp.c_proj.weight"], b.ffnDown)]
        }
        return all
    }

    /// Compares the stored panels (and int8 scales) byte for byte, reporting the first difference.
    func assertSameStorage(_ actual: WeightMatrix, _ expected: WeightMatrix, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.format, expected.format, what, file: file, line: line)
        let (a, e) = (storedBytes(actual), storedBytes(expected))
        guard a != e else { return }
        let index = (0..<min(a.count, e.count)).first { a[$0] != e[$0] } ?? min(a.count, e.count)
        XCTFail("\(what): stored bytes differ first at byte \(index) of \(a.count) vs \(e.count)", file: file, line: line)
    }

    func storedBytes(_ matrix: WeightMatrix) -> [UInt8] {
        let elements = matrix.panelCount * matrix.paddedInputs * panelWidth
        func bytes<T>(_ pointer: UnsafeMutablePointer<T>, _ count: Int) -> [UInt8] {
            Array(UnsafeRawBufferPointer(start: pointer, count: count * MemoryLayout<T>.stride))
        }
        switch matrix.storage {
        case .float32Panels(let panels): return bytes(panels, elements)
        case .float16Panels(let panels), .bfloat16Panels(let panels): return bytes(panels, elements)
        case .int8Panels(let panels, let scales): return bytes(panels, elements) + bytes(scales, matrix.panelCount * panelWidth)
        }
    }

    /// Rss of this process's mappings of `path`, from /proc/self/smaps (read line by line: Foundation's
    /// file reading stops at the 4 KB a /proc file's size claims).
    func residentKilobytes(ofMapping path: String) throws -> Int {
        guard let stream = fopen("/proc/self/smaps", "r") else { throw CocoaError(.fileReadUnknown) }
        defer { fclose(stream) }
        var buffer: UnsafeMutablePointer<CChar>? = nil, capacity = 0
        defer { free(buffer) }
        var inMapping = false, total = 0
        while getline(&buffer, &capacity, stream) > 0, let buffer {
            let fields = String(cString: buffer).split(whereSeparator: { $0 == " " || $0 == "\n" })
            if let first = fields.first, first.contains("-"), first.allSatisfy({ $0.isHexDigit || $0 == "-" }) {
                inMapping = fields.count >= 6 && fields[5...].joined(separator: " ") == path
            } else if inMapping, fields.first == "Rss:", fields.count >= 2, let kilobytes = Int(fields[1]) {
                total += kilobytes
            }
        }
        return total
    }
}
