import CPrefetch
import Foundation

// The inner loops of attention (Attention.swift) over one head's contiguous runs of keys and values.
// A score is always the same SIMD8 FMA chain over head_dim (`addingProduct(query, key)` per 8 floats,
// the tail zero-padded) and the same tree of `horizontalSum`, whether it is computed alone, four keys
// at a time, or for four queries at once with the tree applied to eight scores in one register.

// MARK: - Scores, one query

/// scores[j - keys.lowerBound] = query · key(j) for j in `keys`. With `prefetch`, each run's pass
/// prefetches the next run, and the last the first run of values (read next by `weightedValues`).
func scoreKeys(_ query: UnsafePointer<Float>, _ keysAndValues: HeadKeysAndValues, _ keys: Range<Int>,
               into scores: UnsafeMutablePointer<Float>, prefetch: Bool) {
    forEachKeyRun(keysAndValues, keys, prefetch: prefetch) { run, count, offset, prefetchBase, prefetchCount in
        dotProducts(query, keys: run, count: count, headDim: keysAndValues.headDim, into: scores + offset,
                    prefetch: prefetchBase, prefetchCount: prefetchCount)
    }
}

/// Calls `body` for each run of contiguous keys among `keys`, in ascending position, with its offset
/// from `keys.lowerBound` and what to prefetch while reading it (count vectors of head_dim floats):
/// with `prefetch`, the next run's keys, and after the last run the first run's values.
@inline(__always) func forEachKeyRun(
    _ keysAndValues: HeadKeysAndValues, _ keys: Range<Int>, prefetch: Bool,
    _ body: (_ run: UnsafePointer<Float>, _ count: Int, _ offset: Int, _ prefetch: UnsafePointer<Float>, _ prefetchCount: Int) -> Void
) {
    var j = keys.lowerBound
    var run = keysAndValues.run(from: j, to: keys.upperBound)
    while true {
        let after = j + run.count
        let upcoming = keysAndValues.run(from: after < keys.upperBound ? after : keys.lowerBound, to: keys.upperBound)
        body(run.keys, run.count, j - keys.lowerBound, after < keys.upperBound ? upcoming.keys : upcoming.values, prefetch ? upcoming.count : 0)
        if after == keys.upperBound { return }
        (j, run) = (after, upcoming)
    }
}

/// scores[i] = query · keys[i] for `count` keys stored one after another, four keys at a time for
/// independent FMA chains. Prefetches `prefetchCount` vectors of `headDim` floats from `prefetch`.
@inline(__always) private func dotProducts(_ query: UnsafePointer<Float>, keys: UnsafePointer<Float>, count: Int, headDim: Int,
                                           into scores: UnsafeMutablePointer<Float>, prefetch: UnsafePointer<Float>, prefetchCount: Int) {
    let fullVectors = headDim / vectorWidth
    let tail = headDim - fullVectors * vectorWidth
    @inline(__always) func finishScore(_ accumulator: Vector, _ key: UnsafePointer<Float>) -> Float {
        horizontalSum(addTail(accumulator, query, key, fullVectors: fullVectors, tail: tail))
    }
    var i = 0
    while i + 4 <= count {
        let k0 = keys + i * headDim, k1 = k0 + headDim, k2 = k1 + headDim, k3 = k2 + headDim
        if i < prefetchCount { prefetchFloats(prefetch + i * headDim, count: min(4, prefetchCount - i) * headDim) }
        var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector()
        for block in 0..<fullVectors {
            let offset = block * vectorWidth
            let queryVector = loadVector(query + offset)
            a0 = a0.addingProduct(queryVector, loadVector(k0 + offset))
            a1 = a1.addingProduct(queryVector, loadVector(k1 + offset))
            a2 = a2.addingProduct(queryVector, loadVector(k2 + offset))
            a3 = a3.addingProduct(queryVector, loadVector(k3 + offset))
        }
        scores[i] = finishScore(a0, k0)
        scores[i + 1] = finishScore(a1, k1)
        scores[i + 2] = finishScore(a2, k2)
        scores[i + 3] = finishScore(a3, k3)
        i += 4
    }
    while i < count {
        let key = keys + i * headDim
        if i < prefetchCount { prefetchFloats(prefetch + i * headDim, count: headDim) }
        var accumulator = Vector()
        for block in 0..<fullVectors {
            accumulator = accumulator.addingProduct(loadVector(query + block * vectorWidth), loadVector(key + block * vectorWidth))
        }
        scores[i] = finishScore(accumulator, key)
        i += 1
    }
}

/// The last partial vector of a dot product (head_dim not a multiple of 8), zero-padded.
@inline(__always) private func addTail(_ accumulator: Vector, _ query: UnsafePointer<Float>, _ key: UnsafePointer<Float>,
                                       fullVectors: Int, tail: Int) -> Vector {
    guard tail > 0 else { return accumulator }
    let offset = fullVectors * vectorWidth
    return accumulator.addingProduct(loadPartial(query + offset, tail), loadPartial(key + offset, tail))
}

// MARK: - Scores, four queries

/// scores[(j - keys.lowerBound) * 4 + r] = query_r · key(j) for j in `keys`: each key is loaded once
/// for the four queries.
func scoreKeys(_ query0: UnsafePointer<Float>, _ query1: UnsafePointer<Float>, _ query2: UnsafePointer<Float>,
               _ query3: UnsafePointer<Float>, _ keysAndValues: HeadKeysAndValues, _ keys: Range<Int>,
               into scores: UnsafeMutablePointer<Float>, prefetch: Bool) {
    let headDim = keysAndValues.headDim
    let fullVectors = headDim / vectorWidth
    let tail = headDim - fullVectors * vectorWidth
    forEachKeyRun(keysAndValues, keys, prefetch: prefetch) { run, count, offset, prefetchBase, prefetchCount in
        let rowScores = scores + offset * attentionQueryGroup
        // Two keys at a time: eight FMA chains (query r, key k) in eight registers.
        var i = 0
        while i < count {
            let k0 = run + i * headDim
            let k1 = i + 1 < count ? k0 + headDim : k0
            if i < prefetchCount { prefetchFloats(prefetchBase + i * headDim, count: min(2, prefetchCount - i) * headDim) }
            var a00 = Vector(), a01 = Vector(), a10 = Vector(), a11 = Vector()
            var a20 = Vector(), a21 = Vector(), a30 = Vector(), a31 = Vector()
            for block in 0..<fullVectors {
                let offset = block * vectorWidth
                let key0 = loadVector(k0 + offset), key1 = loadVector(k1 + offset)
                var queryVector = loadVector(query0 + offset)
                a00 = a00.addingProduct(queryVector, key0); a01 = a01.addingProduct(queryVector, key1)
                queryVector = loadVector(query1 + offset)
                a10 = a10.addingProduct(queryVector, key0); a11 = a11.addingProduct(queryVector, key1)
                queryVector = loadVector(query2 + offset)
                a20 = a20.addingProduct(queryVector, key0); a21 = a21.addingProduct(queryVector, key1)
                queryVector = loadVector(query3 + offset)
                a30 = a30.addingProduct(queryVector, key0); a31 = a31.addingProduct(queryVector, key1)
            }
            // Lanes: (key 0: queries 0…3, key 1: queries 0…3), one row of four per key.
            let sums = horizontalSums(
                addTail(a00, query0, k0, fullVectors: fullVectors, tail: tail), addTail(a01, query0, k1, fullVectors: fullVectors, tail: tail),
                addTail(a10, query1, k0, fullVectors: fullVectors, tail: tail), addTail(a11, query1, k1, fullVectors: fullVectors, tail: tail),
                addTail(a20, query2, k0, fullVectors: fullVectors, tail: tail), addTail(a21, query2, k1, fullVectors: fullVectors, tail: tail),
                addTail(a30, query3, k0, fullVectors: fullVectors, tail: tail), addTail(a31, query3, k1, fullVectors: fullVectors, tail: tail))
            if i + 1 < count {
                storeVector(sums, rowScores + i * attentionQueryGroup)
            } else {
                UnsafeMutableRawPointer(rowScores + i * attentionQueryGroup).storeBytes(of: sums.lowHalf, as: SIMD4<Float>.self)
            }
            i += 2
        }
    }
}

/// `horizontalSum` of eight vectors at once, in its order (halves, then quarters, then the last
/// pair) for every one: lanes (a0, a2, a4, a6, a1, a3, a5, a7) of the result are the eight sums.
@inline(__always) private func horizontalSums(_ a0: Vector, _ a1: Vector, _ a2: Vector, _ a3: Vector,
                                              _ a4: Vector, _ a5: Vector, _ a6: Vector, _ a7: Vector) -> Vector {
    // Halves: lanes (a.low + a.high | b.low + b.high).
    @inline(__always) func halves(_ a: Vector, _ b: Vector) -> Vector {
        Vector(lowHalf: a.lowHalf, highHalf: b.lowHalf) + Vector(lowHalf: a.highHalf, highHalf: b.highHalf)
    }
    // Quarters: four[i] + four[i + 2] for the four sums held two per 128-bit lane by x and y.
    @inline(__always) func quarters(_ x: Vector, _ y: Vector) -> Vector {
        Vector(x[0], x[1], y[0], y[1], x[4], x[5], y[4], y[5]) + Vector(x[2], x[3], y[2], y[3], x[6], x[7], y[6], y[7])
    }
    // The last pair: two[0] + two[1].
    @inline(__always) func pairs(_ x: Vector, _ y: Vector) -> Vector {
        Vector(x[0], x[2], y[0], y[2], x[4], x[6], y[4], y[6]) + Vector(x[1], x[3], y[1], y[3], x[5], x[7], y[5], y[7])
    }
    return pairs(quarters(halves(a0, a1), halves(a2, a3)), quarters(halves(a4, a5), halves(a6, a7)))
}

// MARK: - Softmax

/// Softmax in fp32 in place: the maximum, exp lane-wise (vectorized), the sum in ascending position.
func softmaxInPlace(_ scores: UnsafeMutablePointer<Float>, count: Int) {
    // The maximum is exact in any order (NaN is skipped, as by `max`).
    var maxima = Vector(repeating: -.infinity)
    var i = 0
    while i + vectorWidth <= count {
        let v = loadVector(scores + i)
        maxima = maxima.replacing(with: v, where: v .> maxima)
        i += vectorWidth
    }
    var maxScore = -Float.infinity
    for lane in 0..<vectorWidth { maxScore = max(maxScore, maxima[lane]) }
    while i < count { maxScore = max(maxScore, scores[i]); i += 1 }
    // The sum's chain of adds, one key after another, overlaps the next keys' exp.
    let shift = Vector(repeating: maxScore)
    var total: Float = 0
    i = 0
    while i + vectorWidth <= count {
        let exponentials = expApproximation(loadVector(scores + i) - shift)
        storeVector(exponentials, scores + i)
        for lane in 0..<vectorWidth { total += exponentials[lane] }
        i += vectorWidth
    }
    if i < count {
        let exponentials = expApproximation(loadPartial(scores + i, count - i) - shift)
        storePartial(exponentials, scores + i, count - i)
        for lane in 0..<(count - i) { total += exponentials[lane] }
    }
    for i in 0..<count { scores[i] = scores[i] / total }
}

/// Four softmaxes side by side: scores is (keyCount, 4), one query per column; each column gets the
/// arithmetic of `softmaxInPlace`, its sum still in ascending position.
func softmaxInPlace(groupScores scores: UnsafeMutablePointer<Float>, keyCount: Int) {
    typealias Row = SIMD4<Float>
    @inline(__always) func loadRow(_ i: Int) -> Row { UnsafeRawPointer(scores + i * 4).loadUnaligned(as: Row.self) }
    @inline(__always) func storeRow(_ row: Row, _ i: Int) { UnsafeMutableRawPointer(scores + i * 4).storeBytes(of: row, as: Row.self) }
    var maxima = Vector(repeating: -.infinity)
    var i = 0
    while i + 2 <= keyCount {
        let v = loadVector(scores + i * 4)
        maxima = maxima.replacing(with: v, where: v .> maxima)
        i += 2
    }
    var rowMaxima = maxima.lowHalf.replacing(with: maxima.highHalf, where: maxima.highHalf .> maxima.lowHalf)
    if i < keyCount { rowMaxima = rowMaxima.replacing(with: loadRow(i), where: loadRow(i) .> rowMaxima) }
    let shift = Vector(lowHalf: rowMaxima, highHalf: rowMaxima)
    // The sums' chains of adds, one key after another, overlap the next keys' exp.
    var totals = Row()
    i = 0
    while i + 2 <= keyCount {
        let exponentials = expApproximation(loadVector(scores + i * 4) - shift)
        storeVector(exponentials, scores + i * 4)
        totals += exponentials.lowHalf
        totals += exponentials.highHalf
        i += 2
    }
    if i < keyCount {
        let exponentials = expApproximation(Vector(lowHalf: loadRow(i), highHalf: loadRow(i)) - shift).lowHalf
        storeRow(exponentials, i)
        totals += exponentials
    }
    let divisors = Vector(lowHalf: totals, highHalf: totals)
    i = 0
    while i + 2 <= keyCount { storeVector(loadVector(scores + i * 4) / divisors, scores + i * 4); i += 2 }
    if i < keyCount { storeRow(loadRow(i) / totals, i) }
}

// MARK: - Weighted values

/// output (headDim) = Σ probabilities[(j - keys.lowerBound) * stride] × value(j) over j in `keys`,
/// like softmax(...) @ v: every output element accumulates its keys in ascending position, one FMA
/// each. With `prefetch`, each run's pass prefetches the next run.
func weightedValues(_ output: UnsafeMutablePointer<Float>, _ keysAndValues: HeadKeysAndValues, _ keys: Range<Int>,
                    probabilities: UnsafePointer<Float>, stride: Int, prefetch: Bool) {
    let headDim = keysAndValues.headDim
    guard headDim % 64 == 0 else {
        // Any other head size: the same accumulation through memory.
        output.update(repeating: 0, count: headDim)
        var j = keys.lowerBound
        while j < keys.upperBound {
            let run = keysAndValues.run(from: j, to: keys.upperBound)
            for i in 0..<run.count {
                accumulate(output, probabilities[(j - keys.lowerBound + i) * stride], run.values + i * headDim, count: headDim)
            }
            j += run.count
        }
        return
    }
    // 64 output values at a time in eight registers (head_dim is 64 or 128 in every GPT-Neo).
    for group in Swift.stride(from: 0, to: headDim, by: 64) {
        var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector()
        var a4 = Vector(), a5 = Vector(), a6 = Vector(), a7 = Vector()
        var j = keys.lowerBound
        var run = keysAndValues.run(from: j, to: keys.upperBound)
        while true {
            let after = j + run.count
            let upcoming = after < keys.upperBound ? keysAndValues.run(from: after, to: keys.upperBound) : run
            let prefetchCount = prefetch && after < keys.upperBound ? upcoming.count : 0
            let runProbabilities = probabilities + (j - keys.lowerBound) * stride
            for i in 0..<run.count {
                let p = Vector(repeating: runProbabilities[i * stride])
                let value = run.values + i * headDim + group
                if i < prefetchCount { prefetchFloats(upcoming.values + i * headDim + group, count: 64) }
                a0 = a0.addingProduct(p, loadVector(value)); a1 = a1.addingProduct(p, loadVector(value + 8))
                a2 = a2.addingProduct(p, loadVector(value + 16)); a3 = a3.addingProduct(p, loadVector(value + 24))
                a4 = a4.addingProduct(p, loadVector(value + 32)); a5 = a5.addingProduct(p, loadVector(value + 40))
                a6 = a6.addingProduct(p, loadVector(value + 48)); a7 = a7.addingProduct(p, loadVector(value + 56))
            }
            if after == keys.upperBound { break }
            (j, run) = (after, upcoming)
        }
        let o = output + group
        storeVector(a0, o); storeVector(a1, o + 8); storeVector(a2, o + 16); storeVector(a3, o + 24)
        storeVector(a4, o + 32); storeVector(a5, o + 40); storeVector(a6, o + 48); storeVector(a7, o + 56)
    }
}

/// output += probability × value over `count` floats, one FMA per element (the tail zero-padded).
@inline(__always) private func accumulate(_ output: UnsafeMutablePointer<Float>, _ probability: Float, _ value: UnsafePointer<Float>,
                                          count: Int) {
    let p = Vector(repeating: probability)
    let full = count / vectorWidth * vectorWidth
    var c = 0
    while c < full { storeVector(loadVector(output + c).addingProduct(p, loadVector(value + c)), output + c); c += vectorWidth }
    if c < count { storePartial(loadPartial(output + c, count - c).addingProduct(p, loadPartial(value + c, count - c)), output + c, count - c) }
}

/// Prefetches the cache lines of `count` floats from `address`.
@inline(__always) private func prefetchFloats(_ address: UnsafePointer<Float>, count: Int) {
    var offset = 0
    while offset < count { prefetchForRead(address + offset); offset += 16 }
}
