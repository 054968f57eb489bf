import Foundation
import XCTest
@testable import GPTNeo

/// A random model whose sizes are not multiples of the SIMD width (head 12, hidden 36, MLP 44,
/// vocabulary 101) so every tail path of the kernels runs; checked against a plain Double
/// implementation of the same equations, and for cache and batch consistency.
class OddShapeTests: XCTestCase {
    /// Overridden by subclasses to run the same tests on another shape.
    class var shape: (C: Int, heads: Int, I: Int) { (36, 3, 44) }
    class var C: Int { shape.C }
    class var heads: Int { shape.heads }
    class var I: Int { shape.I }
    static let V = 101
    /// Positions, local window and test sequence length; overridden with a window that spans blocks.
    class var P: Int { 64 }
    class var window: Int { 5 }
    class var tokenCount: Int { 40 }
    static let kinds = ["global", "local", "local"]
    /// Per test class: its temporary checkpoint and the model loaded from it.
    nonisolated(unsafe) static var loaded: [ObjectIdentifier: (TemporaryCheckpoint, GPTNeoModel)] = [:]
    class var model: GPTNeoModel { loaded[ObjectIdentifier(self)]!.1 }

    override class func setUp() {
        let temporary = try! TemporaryCheckpoint()
        let config = """
        {"vocab_size": \(V), "hidden_size": \(C), "num_heads": \(heads), "num_layers": 3, "intermediate_size": \(I),
         "attention_types": [[["global", "local", "local"], 1]], "window_size": \(window),
         "max_position_embeddings": \(P), "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}
        """
        try! temporary.writeConfig(config)
        var state: UInt64 = 42
        func random(_ count: Int, scale: Float, offset: Float = 0) -> [Float] {
            (0..<count).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return offset + scale * (Float(state >> 40) / Float(1 << 24) * 2 - 1)
            }
        }
        var tensors: [RawTensor] = [.f32("transformer.wte.weight", shape: [V, C], values: random(V * C, scale: 0.5)),
                                    .f32("transformer.wpe.weight", shape: [P, C], values: random(P * C, scale: 0.3))]
        // Weight scale ~1.8/sqrt(fan-in) keeps the unscaled attention scores moderate at every width, so
        // the fp32 engine and the Double reference agree closely (saturated softmaxes amplify rounding).
        let matrix = Float(1.8 / Double(C).squareRoot()), down = Float(1.8 / Double(I).squareRoot())
        for layer in 0..<3 {
            let p = "transformer.h.\(layer)."
            tensors += [
                .f32(p + "ln_1.weight", shape: [C], values: random(C, scale: 0.2, offset: 1)),
                .f32(p + "ln_1.bias", shape: [C], values: random(C, scale: 0.1)),
                .f32(p + "attn.attention.q_proj.weight", shape: [C, C], values: random(C * C, scale: matrix)),
                .f32(p + "attn.attention.k_proj.weight", shape: [C, C], values: random(C * C, scale: matrix)),
                .f32(p + "attn.attention.v_proj.weight", shape: [C, C], values: random(C * C, scale: matrix)),
                .f32(p + "attn.attention.out_proj.weight", shape: [C, C], values: random(C * C, scale: matrix)),
                .f32(p + "attn.attention.out_proj.bias", shape: [C], values: random(C, scale: 0.1)),
                .f32(p + "ln_2.weight", shape: [C], values: random(C, scale: 0.2, offset: 1)),
                .f32(p + "ln_2.bias", shape: [C], values: random(C, scale: 0.1)),
                .f32(p + "mlp.c_fc.weight", shape: [I, C], values: random(I * C, scale: matrix)),
                .f32(p + "mlp.c_fc.bias", shape: [I], values: random(I, scale: 0.1)),
                .f32(p + "mlp.c_proj.weight", shape: [C, I], values: random(C * I, scale: down)),
                .f32(p + "mlp.c_proj.bias", shape: [C], values: random(C, scale: 0.1)),
            ]
        }
        tensors += [.f32("transformer.ln_f.weight", shape: [C], values: random(C, scale: 0.2, offset: 1)),
                    .f32("transformer.ln_f.bias", shape: [C], values: random(C, scale: 0.1))]
        try! temporary.write("model.safetensors", safetensorsBytes(tensors))
        loaded[ObjectIdentifier(self)] = (temporary, try! GPTNeoModel.load(directory: temporary.directory))
    }

    override class func tearDown() { loaded.removeValue(forKey: ObjectIdentifier(self))?.0.remove() }

    var tokens: [Int] { (0..<Self.tokenCount).map { ($0 * 37 + 11) % Self.V } }

    // MARK: Plain reference

    /// All logits (T, V) of `tokens`, straight from the equations of modeling_gpt_neo.py, in Double.
    func referenceLogits(_ tokens: [Int]) throws -> [Double] {
        let (C, H, I, V) = (Self.C, Self.heads, Self.I, Self.V)
        let d = C / H
        let checkpoint = Self.model.checkpoint
        func w(_ name: String, _ shape: [Int]) throws -> [Double] { try checkpoint.tensor(name, shape: shape).array.map(Double.init) }
        func linear(_ x: [Double], _ weight: [Double], _ bias: [Double]?, _ n: Int, _ k: Int) -> [Double] {
            var y = [Double](repeating: 0, count: n)
            for o in 0..<n {
                var sum: Double = bias?[o] ?? 0
                for c in 0..<k { sum += x[c] * weight[o * k + c] }
                y[o] = sum
            }
            return y
        }
        func norm(_ x: [Double], _ g: [Double], _ b: [Double]) -> [Double] {
            let mean = x.reduce(0, +) / Double(x.count)
            let variance = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(x.count)
            return x.indices.map { (x[$0] - mean) / (variance + 1e-5).squareRoot() * g[$0] + b[$0] }
        }
        let wte = try w("wte.weight", [V, C]), wpe = try w("wpe.weight", [Self.P, C])
        var h = tokens.enumerated().map { t, token in (0..<C).map { wte[token * C + $0] + wpe[t * C + $0] } }
        for layer in 0..<3 {
            let p = "h.\(layer)."
            let normed = try h.map { norm($0, try w(p + "ln_1.weight", [C]), try w(p + "ln_1.bias", [C])) }
            let q = try normed.map { linear($0, try w(p + "attn.attention.q_proj.weight", [C, C]), nil, C, C) }
            let k = try normed.map { linear($0, try w(p + "attn.attention.k_proj.weight", [C, C]), nil, C, C) }
            let v = try normed.map { linear($0, try w(p + "attn.attention.v_proj.weight", [C, C]), nil, C, C) }
            var attended = [[Double]](repeating: [Double](repeating: 0, count: C), count: tokens.count)
            for i in tokens.indices {
                for head in 0..<H {
                    let first = Self.kinds[layer] == "global" ? 0 : max(0, i - Self.window + 1)
                    var scores: [Double] = []
                    for j in first...i {
                        var dot = 0.0
                        for c in 0..<d { dot += q[i][head * d + c] * k[j][head * d + c] }
                        scores.append(dot)  // no 1/sqrt(d) scaling in GPT-Neo
                    }
                    let top = scores.max()!
                    let e = scores.map { Foundation.exp($0 - top) }
                    let total = e.reduce(0, +)
                    for (n, j) in (first...i).enumerated() { for c in 0..<d { attended[i][head * d + c] += e[n] / total * v[j][head * d + c] } }
                }
            }
            let outW = try w(p + "attn.attention.out_proj.weight", [C, C]), outB = try w(p + "attn.attention.out_proj.bias", [C])
            h = h.indices.map { i in zip(h[i], linear(attended[i], outW, outB, C, C)).map(+) }
            let normed2 = try h.map { norm($0, try w(p + "ln_2.weight", [C]), try w(p + "ln_2.bias", [C])) }
            let up = try w(p + "mlp.c_fc.weight", [I, C]), upB = try w(p + "mlp.c_fc.bias", [I])
            let down = try w(p + "mlp.c_proj.weight", [C, I]), downB = try w(p + "mlp.c_proj.bias", [C])
            h = h.indices.map { i in
                let inner = linear(normed2[i], up, upB, I, C).map { (x: Double) -> Double in
                    let cubic: Double = x + 0.044715 * x * x * x
                    return 0.5 * x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * cubic))
                }
                return zip(h[i], linear(inner, down, downB, C, I)).map(+)
            }
        }
        let finalNorm = try h.map { norm($0, try w("ln_f.weight", [C]), try w("ln_f.bias", [C])) }
        return finalNorm.flatMap { linear($0, wte, nil, V, C) }
    }

    // MARK: Tests

    func testMatchesPlainReferenceFullAndCached() throws {
        let reference = try referenceLogits(tokens).map(Float.init)
        let engine = GPTNeoEngine(model: Self.model)
        let full = try engine.forward([ForwardItem(cache: engine.makeCache(capacity: tokens.count), tokens: tokens, logitRows: .all)])[0].logits
        print("\(Self.self): max |Δ| vs Double, full sequence:", zip(full, reference).map { abs($0 - $1) }.max()!)
        assertClose(full, reference, tolerance: referenceTolerance, "full sequence vs Double reference")
        let cache = engine.makeCache(capacity: tokens.count)
        var stepwise: [Float] = []
        for token in tokens { stepwise += try engine.forward([ForwardItem(cache: cache, tokens: [token])])[0].logits }
        assertClose(stepwise, reference, tolerance: referenceTolerance, "step by step vs Double reference")
    }

    func testBatchInvariantWithTails() throws {
        let engine = GPTNeoEngine(model: Self.model)
        func probe(with companions: [Int]) throws -> [Float] {
            let cache = engine.makeCache(capacity: 40)
            var logits: [Float] = []
            for chunk in [3, 7, 1, 1, 5, 2] {
                let start = cache.count
                var items = companions.map { ForwardItem(cache: engine.makeCache(capacity: 40), tokens: Array(tokens.prefix($0)), logitRows: .all) }
                let position = items.count / 2
                items.insert(ForwardItem(cache: cache, tokens: Array(tokens[start..<(start + chunk)]), logitRows: .all), at: position)
                logits += try engine.forward(items)[position].logits
            }
            return logits
        }
        let alone = try probe(with: [])
        for companions in [[1], [2, 9, 1], [5, 5, 5, 1, 30]] {
            assertBitwiseEqual(try probe(with: companions), alone, "companions \(companions)")
        }
    }

    /// Rows attended one at a time (decode) or four at a time (prefill, with partial groups of 2 and
    /// 3 rows), from the chunk or from the cache's blocks and ring, give the same bits; so does a copy
    /// of the cache made half-way.
    func testChunkingDoesNotChangeBits() throws {
        let engine = GPTNeoEngine(model: Self.model)
        let whole = try engine.forward([ForwardItem(cache: engine.makeCache(capacity: tokens.count), tokens: tokens,
                                                    hiddenRows: .all, logitRows: .none)])[0].hidden
        for chunk in [1, 2, 3, 4, 5, 7, 9, 33] {
            var cache = engine.makeCache(capacity: tokens.count)
            var hidden: [Float] = []
            while cache.count < tokens.count {
                if cache.count >= tokens.count / 2 && chunk == 3 { cache = cache.copy(capacity: tokens.count) }
                let end = min(tokens.count, cache.count + chunk)
                hidden += try engine.forward([ForwardItem(cache: cache, tokens: Array(tokens[cache.count..<end]), hiddenRows: .all, logitRows: .none)])[0].hidden
            }
            assertBitwiseEqual(hidden, whole, "chunks of \(chunk) vs one pass")
        }
    }
}

/// head_dim 64 (as in every published GPT-Neo): the attention's register path for the value sum.
final class HeadDim64Tests: OddShapeTests {
    override class var shape: (C: Int, heads: Int, I: Int) { (128, 2, 72) }
    // Restated: Linux test discovery does not list inherited test methods.
    override func testMatchesPlainReferenceFullAndCached() throws { try super.testMatchesPlainReferenceFullAndCached() }
    override func testBatchInvariantWithTails() throws { try super.testBatchInvariantWithTails() }
    override func testChunkingDoesNotChangeBits() throws { try super.testChunkingDoesNotChangeBits() }
}

/// A local window longer than a KV block (32 slots) and not a multiple of it, wrapped three times: a
/// head's run of slots ends at a block's end or at the ring's end, whichever comes first.
final class RingAcrossBlocksTests: OddShapeTests {
    override class var P: Int { 128 }
    override class var window: Int { 40 }
    override class var tokenCount: Int { 128 }
    override func testMatchesPlainReferenceFullAndCached() throws { try super.testMatchesPlainReferenceFullAndCached() }
    override func testBatchInvariantWithTails() throws { try super.testBatchInvariantWithTails() }
    override func testChunkingDoesNotChangeBits() throws { try super.testChunkingDoesNotChangeBits() }
}
