import Foundation

// The matmul kernel this project used before the panel kernel, kept only as the benchmark's baseline:
// each output element a dot product of an x row and a W row (SIMD8 partial sums, then a horizontal sum),
// W read in PyTorch's (N, K) row-major layout, tiles of 4 rows × 2 weight rows or 1 row × 8.

typealias Vector = SIMD8<Float>
let vectorWidth = 8

@inline(__always) func loadVector(_ p: UnsafePointer<Float>) -> Vector { UnsafeRawPointer(p).loadUnaligned(as: Vector.self) }

@inline(__always) func horizontalSum(_ v: Vector) -> Float {
    let four = v.lowHalf + v.highHalf
    let two = four.lowHalf + four.highHalf
    return two[0] + two[1]
}

/// y = x · wᵀ + bias: x (M, K), w (N, K) row-major, y (M, N); parallel over column blocks on `threads`.
func baselineMatMul(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                    _ bias: UnsafePointer<Float>?, M: Int, K: Int, N: Int, threads: Int) {
    guard M > 0, N > 0 else { return }
    let blockColumns = max(4, min(64, (96 * 1024) / max(1, K * 4)) / 4 * 4)
    let workers = M * N * K < (1 << 17) ? 1 : threads
    let blocks = (N + blockColumns - 1) / blockColumns
    let parts = min(blocks, workers == 1 ? 1 : workers * 4)
    let box = UncheckedBox(value: (y, x, w, bias))
    DispatchQueue.concurrentPerform(iterations: parts) { part in
        let (y, x, w, bias) = box.value
        for block in (blocks * part / parts)..<(blocks * (part + 1) / parts) {
            let n0 = block * blockColumns
            baselineTile(y, x, w, bias, rows: 0..<M, columns: n0..<min(N, n0 + blockColumns), K: K, N: N)
        }
    }
}

struct UncheckedBox<Value>: @unchecked Sendable { let value: Value }

/// The output element's value from its accumulator: fixed horizontal sum, scalar tail, bias.
@inline(__always) private func finish(_ accumulator: Vector, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                       vectorEnd: Int, K: Int, _ bias: UnsafePointer<Float>?, _ n: Int) -> Float {
    var sum = horizontalSum(accumulator)
    var k = vectorEnd
    while k < K { sum = sum.addingProduct(x[k], w[k]); k += 1 }
    if let bias { sum += bias[n] }
    return sum
}

private func baselineTile(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                        _ bias: UnsafePointer<Float>?, rows: Range<Int>, columns: Range<Int>, K: Int, N: Int) {
    let K8 = K / vectorWidth * vectorWidth
    var m = rows.lowerBound
    // 4 rows × 2 weight rows: 8 accumulators + 6 loads fit the 16 AVX registers.
    while m + 4 <= rows.upperBound {
        let x0 = x + m * K, x1 = x0 + K, x2 = x1 + K, x3 = x2 + K
        var n = columns.lowerBound
        while n + 2 <= columns.upperBound {
            let w0 = w + n * K, w1 = w0 + K
            var a00 = Vector(), a01 = Vector(), a10 = Vector(), a11 = Vector()
            var a20 = Vector(), a21 = Vector(), a30 = Vector(), a31 = Vector()
            var k = 0
            while k < K8 {
                let v0 = loadVector(w0 + k), v1 = loadVector(w1 + k)
                let r0 = loadVector(x0 + k); a00 = a00.addingProduct(r0, v0); a01 = a01.addingProduct(r0, v1)
                let r1 = loadVector(x1 + k); a10 = a10.addingProduct(r1, v0); a11 = a11.addingProduct(r1, v1)
                let r2 = loadVector(x2 + k); a20 = a20.addingProduct(r2, v0); a21 = a21.addingProduct(r2, v1)
                let r3 = loadVector(x3 + k); a30 = a30.addingProduct(r3, v0); a31 = a31.addingProduct(r3, v1)
                k += vectorWidth
            }
            let out = y + m * N + n
            out[0] = finish(a00, x0, w0, vectorEnd: K8, K: K, bias, n)
            out[1] = finish(a01, x0, w1, vectorEnd: K8, K: K, bias, n + 1)
            out[N] = finish(a10, x1, w0, vectorEnd: K8, K: K, bias, n)
            out[N + 1] = finish(a11, x1, w1, vectorEnd: K8, K: K, bias, n + 1)
            out[2 * N] = finish(a20, x2, w0, vectorEnd: K8, K: K, bias, n)
            out[2 * N + 1] = finish(a21, x2, w1, vectorEnd: K8, K: K, bias, n + 1)
            out[3 * N] = finish(a30, x3, w0, vectorEnd: K8, K: K, bias, n)
            out[3 * N + 1] = finish(a31, x3, w1, vectorEnd: K8, K: K, bias, n + 1)
            n += 2
        }
        for column in n..<columns.upperBound {
            for row in m..<m + 4 { y[row * N + column] = dot1x1(x + row * K, w + column * K, K8: K8, K: K, bias, column) }
        }
        m += 4
    }
    // Remaining rows (all rows of a decode step with fewer than 4 sequences): 1 row × 8 weight rows
    // (more independent weight streams in flight), then 1 × 4, then single columns.
    while m < rows.upperBound {
        let x0 = x + m * K
        var n = columns.lowerBound
        while n + 8 <= columns.upperBound {
            let w0 = w + n * K, w1 = w0 + K, w2 = w1 + K, w3 = w2 + K
            let w4 = w3 + K, w5 = w4 + K, w6 = w5 + K, w7 = w6 + K
            var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector()
            var a4 = Vector(), a5 = Vector(), a6 = Vector(), a7 = Vector()
            var k = 0
            while k < K8 {
                let r = loadVector(x0 + k)
                a0 = a0.addingProduct(r, loadVector(w0 + k)); a1 = a1.addingProduct(r, loadVector(w1 + k))
                a2 = a2.addingProduct(r, loadVector(w2 + k)); a3 = a3.addingProduct(r, loadVector(w3 + k))
                a4 = a4.addingProduct(r, loadVector(w4 + k)); a5 = a5.addingProduct(r, loadVector(w5 + k))
                a6 = a6.addingProduct(r, loadVector(w6 + k)); a7 = a7.addingProduct(r, loadVector(w7 + k))
                k += vectorWidth
            }
            let out = y + m * N + n
            out[0] = finish(a0, x0, w0, vectorEnd: K8, K: K, bias, n)
            out[1] = finish(a1, x0, w1, vectorEnd: K8, K: K, bias, n + 1)
            out[2] = finish(a2, x0, w2, vectorEnd: K8, K: K, bias, n + 2)
            out[3] = finish(a3, x0, w3, vectorEnd: K8, K: K, bias, n + 3)
            out[4] = finish(a4, x0, w4, vectorEnd: K8, K: K, bias, n + 4)
            out[5] = finish(a5, x0, w5, vectorEnd: K8, K: K, bias, n + 5)
            out[6] = finish(a6, x0, w6, vectorEnd: K8, K: K, bias, n + 6)
            out[7] = finish(a7, x0, w7, vectorEnd: K8, K: K, bias, n + 7)
            n += 8
        }
        while n + 4 <= columns.upperBound {
            let w0 = w + n * K, w1 = w0 + K, w2 = w1 + K, w3 = w2 + K
            var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector()
            var k = 0
            while k < K8 {
                let r = loadVector(x0 + k)
                a0 = a0.addingProduct(r, loadVector(w0 + k)); a1 = a1.addingProduct(r, loadVector(w1 + k))
                a2 = a2.addingProduct(r, loadVector(w2 + k)); a3 = a3.addingProduct(r, loadVector(w3 + k))
                k += vectorWidth
            }
            let out = y + m * N + n
            out[0] = finish(a0, x0, w0, vectorEnd: K8, K: K, bias, n)
            out[1] = finish(a1, x0, w1, vectorEnd: K8, K: K, bias, n + 1)
            out[2] = finish(a2, x0, w2, vectorEnd: K8, K: K, bias, n + 2)
            out[3] = finish(a3, x0, w3, vectorEnd: K8, K: K, bias, n + 3)
            n += 4
        }
        for column in n..<columns.upperBound { y[m * N + column] = dot1x1(x0, w + column * K, K8: K8, K: K, bias, column) }
        m += 1
    }
}

@inline(__always) private func dot1x1(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, K8: Int, K: Int,
                                      _ bias: UnsafePointer<Float>?, _ n: Int) -> Float {
    var a = Vector()
    var k = 0
    while k < K8 { a = a.addingProduct(loadVector(x + k), loadVector(w + k)); k += vectorWidth }
    return finish(a, x, w, vectorEnd: K8, K: K, bias, n)
}
