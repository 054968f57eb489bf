import Foundation
import XCTest
@_spi(Benchmarks) @testable import GPTNeo

/// One head's attention (`attendHead`) against its definition, bit for bit, for both codes: a score is
/// eight FMA chains over head_dim (lane l takes the elements l, l + 8, …, a last partial block padded
/// with zeros) summed ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)); the softmax takes
/// `expApproximation` of score − max, sums in ascending position and divides; an output element is one
/// FMA chain over the row's keys in ascending position. Keys come from cache blocks, a local layer's
/// ring and the chunk's rows; the rows from tasks of several sizes (groups of four, left-over rows, and
/// one row at a time as in decode, whose scores the AVX-512 code takes 16 keys per register).
final class AttentionKernelTests: XCTestCase {
    func testAVX2KernelsComputeTheDefinition() {
        assertAttentionComputesTheDefinition(kernel: .avx2)
    }

    func testAVX512KernelsComputeTheDefinition() throws {
        try XCTSkipUnless(FloatKernel.best == .avx512, "this CPU has no AVX-512F: the AVX-512 kernels cannot run here")
        XCTAssertTrue([64, 128, 192].allSatisfy { FloatKernel.avx512.attendsWide(headDim: $0) })
        assertAttentionComputesTheDefinition(kernel: .avx512)
    }

    func assertAttentionComputesTheDefinition(kernel: FloatKernel, file: StaticString = #filePath, line: UInt = #line) {
        let (heads, head, window) = (2, 1, 24)
        // (layer kind, positions already cached, chunk length): a prefill, chunks after cached
        // positions (several blocks of 32, a ring that wrapped), decode steps (up to ten blocks, a ring
        // wrapped many times).
        let cases: [(GPTNeoConfig.AttentionKind, Int, Int)] = [
            (.global, 0, 45), (.global, 70, 29), (.local, 0, 70), (.local, 50, 23), (.global, 70, 1), (.local, 61, 1),
            (.global, 317, 1), (.local, 317, 1),
        ]
        // 64 and 128 as in GPT-Neo; 192 takes the AVX-512 code with a head size it has no special case
        // for; 40 and 36 the AVX2 code's tails on either code.
        for headDim in [64, 128, 192, 40, 36] {
            let C = heads * headDim
            for (kind, start, length) in cases {
                let end = start + length
                let seed = UInt64(headDim * 1000 + start * 10 + length)
                let keys = randomMatrix(end * headDim, seed: seed), values = randomMatrix(end * headDim, seed: seed + 1)
                let queries = randomMatrix(length * C, seed: seed + 2)
                var config = GPTNeoConfig.placeholder
                config.hiddenSize = C; config.numHeads = heads; config.windowSize = window
                config.attentionLayers = [.global, .local]; config.numLayers = 2
                let cache = KVCache(config: config, capacity: end)
                cache.reserve(positions: end)
                let layer = kind == .global ? 0 : 1
                keys.withUnsafeBufferPointer { keyBuffer in
                    values.withUnsafeBufferPointer { valueBuffer in
                        @inline(__always) func headKeysAndValues(from position: Int) -> HeadKeysAndValues {
                            HeadKeysAndValues(stored: cache.stored(layer: layer, head: head), start: position, headDim: headDim,
                                              chunkKeys: keyBuffer.baseAddress! + position * headDim,
                                              chunkValues: valueBuffer.baseAddress! + position * headDim)
                        }
                        storeChunk(headKeysAndValues(from: 0), item: AttentionItem(cache: cache, firstRow: 0, length: start, start: 0),
                                   layer: layer)
                        let item = AttentionItem(cache: cache, firstRow: 0, length: length, start: start)
                        for rowsPerTask in [32, 7, 1] {
                            var out = [Float](repeating: .nan, count: length * C)
                            var scores = [Float](repeating: 0, count: attentionQueryGroup * end)
                            queries.withUnsafeBufferPointer { q in
                                for firstRow in stride(from: 0, to: length, by: rowsPerTask) {
                                    attendHead(headKeysAndValues(from: start), queryRows: firstRow..<min(length, firstRow + rowsPerTask),
                                               item: item, head: head, kind: kind, window: window, q: q.baseAddress!, queryStride: C,
                                               out: &out, scores: &scores, C: C, kernel: kernel)
                                }
                            }
                            for t in 0..<length {
                                let position = start + t
                                let own = (kind == .global ? 0 : max(0, position - window + 1))...position
                                let expected = attentionDefinition(query: Array(queries[(t * C + head * headDim)...].prefix(headDim)),
                                                                   keys: keys, values: values, positions: own, headDim: headDim)
                                let got = Array(out[(t * C + head * headDim)...].prefix(headDim))
                                if let c = (0..<headDim).first(where: { got[$0].bitPattern != expected[$0].bitPattern }) {
                                    XCTFail("\(kernel) head_dim \(headDim) \(kind) start \(start) length \(length) tasks of \(rowsPerTask) rows: "
                                            + "row \(t) column \(c): \(got[c]) (\(got[c].bitPattern)), defined \(expected[c]) (\(expected[c].bitPattern))",
                                            file: file, line: line)
                                    return
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The attention output of one query over the keys and values (stored one position after another) of
/// `positions`, in the arithmetic every attention code must give (see AttentionKernelTests).
func attentionDefinition(query: [Float], keys: [Float], values: [Float], positions: ClosedRange<Int>, headDim: Int) -> [Float] {
    let scores = positions.map { j -> Float in
        var lanes = [Float](repeating: 0, count: 8)
        for block in 0..<(headDim + 7) / 8 {
            for l in 0..<8 {
                let e = block * 8 + l
                lanes[l] = e < headDim ? lanes[l].addingProduct(query[e], keys[j * headDim + e]) : lanes[l].addingProduct(0, 0)
            }
        }
        return ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]))
    }
    let maximum = scores.max()!
    let exponentials = scores.map { expApproximation(Vector(repeating: $0 - maximum))[0] }
    var total: Float = 0
    for e in exponentials { total += e }
    var output = [Float](repeating: 0, count: headDim)
    for (index, j) in positions.enumerated() {
        let probability = exponentials[index] / total
        for c in 0..<headDim { output[c] = output[c].addingProduct(probability, values[j * headDim + c]) }
    }
    return output
}
