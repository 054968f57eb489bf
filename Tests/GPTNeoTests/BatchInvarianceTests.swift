import Foundation
import XCTest
@testable import GPTNeo

/// An item's outputs are bitwise the same whatever other items share the forward call.
final class BatchInvarianceTests: XCTestCase {
    let model = Shared.model
    var tokens: [Int] { Shared.expected.cases.last!.tokens }

    /// Runs `probe` chunk by chunk (`chunks` sizes), alone or with `companions` (lengths of other items
    /// fed alongside at every call); returns the probe's hidden states and logits of every row.
    func run(chunks: [Int], companions: [Int], engine: GPTNeoEngine) throws -> (hidden: [Float], logits: [Float]) {
        let probe = engine.makeCache(capacity: 100)
        var hidden: [Float] = [], logits: [Float] = []
        var start = 0
        for (step, size) in chunks.enumerated() {
            var items = [ForwardItem(cache: probe, tokens: Array(tokens[start..<(start + size)]), hiddenRows: .all, logitRows: .all)]
            // Companions of other lengths, at other positions, before and after the probe.
            for (i, length) in companions.enumerated() {
                let cache = engine.makeCache(capacity: 64)
                if (i + step) % 2 == 0 { _ = try engine.forward([ForwardItem(cache: cache, tokens: Array(tokens.suffix(5 + i)), logitRows: .none)]) }
                let item = ForwardItem(cache: cache, tokens: Array(tokens[(7 * i)..<(7 * i + length)]), hiddenRows: .last, logitRows: i % 3 == 0 ? .all : .last)
                if i % 2 == 0 { items.insert(item, at: 0) } else { items.append(item) }
            }
            let outputs = try engine.forward(items)
            let index = items.firstIndex { $0.cache === probe }!
            hidden += outputs[index].hidden; logits += outputs[index].logits
            start += size
        }
        return (hidden, logits)
    }

    func assertInvariant(chunks: [Int], file: StaticString = #filePath, line: UInt = #line) throws {
        let engine = GPTNeoEngine(model: model, stackedChunkLimit: 8)
        let alone = try run(chunks: chunks, companions: [], engine: engine)
        for companions in [[1], [1, 1, 1, 1, 1, 1, 1], [3, 20, 1], [8, 9, 2, 30, 1, 5]] {
            let together = try run(chunks: chunks, companions: companions, engine: engine)
            assertBitwiseEqual(together.hidden, alone.hidden, "hidden, chunks \(chunks), companions \(companions)", file: file, line: line)
            assertBitwiseEqual(together.logits, alone.logits, "logits, chunks \(chunks), companions \(companions)", file: file, line: line)
        }
    }

    /// Decode steps (one token each): the stacked path with 1 to many rows.
    func testDecodeStepsAreBatchInvariant() throws {
        try assertInvariant(chunks: [Int](repeating: 1, count: 12))
    }

    /// Short prefill chunks (stacked path) and long ones (sgemm on the item's rows alone).
    func testPrefillChunksAreBatchInvariant() throws {
        try assertInvariant(chunks: [5, 8, 20, 1, 13, 3])
    }

    /// On the stacked path, chunking does not matter either: one 100-token forward, 100 single steps and
    /// uneven chunks give the same bits (attention visits keys in the same order from cache or chunk).
    func testStackedPathIsChunkingInvariant() throws {
        let engine = GPTNeoEngine(model: model, stackedChunkLimit: 100)
        let whole = try engine.forward([ForwardItem(cache: engine.makeCache(capacity: 100), tokens: tokens, hiddenRows: .all, logitRows: .all)])[0]
        for chunks in [[Int](repeating: 1, count: 100), [7, 1, 30, 9, 8, 45]] {
            let cache = engine.makeCache(capacity: 100)
            var hidden: [Float] = [], logits: [Float] = []
            for size in chunks {
                let out = try engine.forward([ForwardItem(cache: cache, tokens: Array(tokens[cache.count..<(cache.count + size)]), hiddenRows: .all, logitRows: .all)])[0]
                hidden += out.hidden; logits += out.logits
            }
            assertBitwiseEqual(hidden, whole.hidden, "hidden, chunks \(chunks.count)")
            assertBitwiseEqual(logits, whole.logits, "logits, chunks \(chunks.count)")
        }
    }

    /// Two runs of the same long chunk through OpenBLAS give the same bits (no run-to-run drift
    /// from threading).
    func testBLASPathIsDeterministicRunToRun() throws {
        let engine = GPTNeoEngine(model: model, stackedChunkLimit: 1)
        var first: [Float]?
        for _ in 0..<5 {
            let out = try engine.forward([ForwardItem(cache: engine.makeCache(capacity: 100), tokens: tokens, hiddenRows: .all, logitRows: .all)])
            if let first { assertBitwiseEqual(out[0].logits, first, "repeat") } else { first = out[0].logits }
        }
    }
}

/// The matrix kernels directly.
final class MatMulTests: XCTestCase {
    func randomMatrix(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int32(truncatingIfNeeded: state >> 33)) / Float(Int32.max)
        }
    }

    func ownKernel(_ x: [Float], _ w: [Float], _ bias: [Float]?, M: Int, K: Int, N: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: M * N)
        let weight = WeightMatrix(FloatTensor(shape: [N, K], values: w))
        let biasTensor = bias.map { FloatTensor(shape: [N], values: $0) }
        y.withUnsafeMutableBufferPointer { out in matMul(out.baseAddress!, x, weight, biasTensor, M: M) }
        return y
    }

    /// Row r of an M-row product equals the 1-row product of row r, bit for bit, for every M, with
    /// K and N not multiples of the tile sizes and a size large enough to use every thread.
    func testOwnKernelRowsDoNotDependOnTheOtherRows() {
        for (K, N) in [(64, 64), (37, 11), (768, 1000)] {
            let w = randomMatrix(N * K, seed: 1), bias = randomMatrix(N, seed: 2)
            let x = randomMatrix(11 * K, seed: 3)
            let single = (0..<11).map { r in ownKernel(Array(x[(r * K)..<((r + 1) * K)]), w, bias, M: 1, K: K, N: N) }
            for M in 1...11 {
                let y = ownKernel(Array(x.prefix(M * K)), w, bias, M: M, K: K, N: N)
                for r in 0..<M { assertBitwiseEqual(Array(y[(r * N)..<((r + 1) * N)]), single[r], "K \(K) N \(N) M \(M) row \(r)") }
            }
        }
    }

    /// Our kernel and sgemm compute the same product (to rounding), and both match a Double reference.
    func testOwnKernelAndBLASAgree() {
        let (M, K, N) = (9, 200, 70)
        let x = randomMatrix(M * K, seed: 4), w = randomMatrix(N * K, seed: 5), bias = randomMatrix(N, seed: 6)
        var reference = [Float](repeating: 0, count: M * N)
        for m in 0..<M { for n in 0..<N {
            var sum = 0.0
            for k in 0..<K { sum += Double(x[m * K + k]) * Double(w[n * K + k]) }
            reference[m * N + n] = Float(sum + Double(bias[n]))
        } }
        var blas = [Float](repeating: .nan, count: M * N)
        let weight = WeightMatrix(FloatTensor(shape: [N, K], values: w)), biasTensor = FloatTensor(shape: [N], values: bias)
        blas.withUnsafeMutableBufferPointer { blasMatMul($0.baseAddress!, x, weight, biasTensor, M: M) }
        assertClose(ownKernel(x, w, bias, M: M, K: K, N: N), reference, tolerance: 1e-4, "own kernel vs Double")
        assertClose(blas, reference, tolerance: 1e-4, "sgemm vs Double")
    }
}

final class KernelTests: XCTestCase {
    func testTanhApproximationIsAccurate() {
        var worst: Float = 0
        var x: Float = -12
        while x <= 12 {
            let approx = tanhApproximation(Vector(repeating: x))[0]
            worst = max(worst, abs(approx - Foundation.tanh(x)))
            x += 0.0009765625 * 0.37
        }
        XCTAssertLessThan(worst, 5e-7, "max |tanh error| (a few ulp of 1)")
    }

    func testExpApproximationIsAccurate() {
        var worst: Float = 0
        var x: Float = -87
        while x <= 0 {
            let approx = expApproximation(Vector(repeating: x))[0]
            let exact = Foundation.exp(x)
            worst = max(worst, abs(approx - exact) / exact)
            x += 0.0137
        }
        XCTAssertLessThan(worst, 3e-7, "max relative exp error")
        XCTAssertEqual(expApproximation(Vector(repeating: -200))[0], 0)
        XCTAssertEqual(expApproximation(Vector(repeating: 0))[0], 1)
    }

    func testLayerNormMatchesDefinition() {
        let C = 13
        let x: [Float] = (0..<(2 * C)).map { Float($0 % 7) * 0.3 - 1 }
        let weight: [Float] = (0..<C).map { 1 + Float($0) * 0.01 }, bias: [Float] = (0..<C).map { Float($0) * -0.02 }
        var out = [Float](repeating: 0, count: 2 * C)
        out.withUnsafeMutableBufferPointer { layerNorm($0.baseAddress!, x, weight, bias, eps: 1e-5, rows: 2, C: C) }
        var reference: [Float] = []
        for r in 0..<2 {
            let row = x[(r * C)..<((r + 1) * C)].map(Double.init)
            let mean = row.reduce(0, +) / Double(C)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(C)
            reference += row.enumerated().map { Float(($1 - mean) / (variance + 1e-5).squareRoot() * Double(weight[$0]) + Double(bias[$0])) }
        }
        assertClose(out, reference, tolerance: 1e-6, "layerNorm")
    }
}
