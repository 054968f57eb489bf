import Foundation

// MARK: - Final LayerNorm and LM head

extension GPTNeoEngine {
    /// ln_f on the rows each item asked for, then the LM head (tied to wte) on the logit rows of all
    /// items in one product: the LM head is the largest matrix, and reading it once per decode step for
    /// all sequences is what batching buys. Rows nobody asked logits for never touch it.
    func finalOutputs(_ items: [ForwardItem], placed: [AttentionItem]) -> [ForwardOutput] {
        let config = model.config
        let weights = model.weights
        let (C, V) = (config.hiddenSize, config.vocabSize)
        let buffers = scratch

        var outputs: [ForwardOutput] = []
        outputs.reserveCapacity(items.count)
        var logitRowCount = 0
        for (index, item) in items.enumerated() {
            let placement = placed[index]
            let hiddenRows = item.hiddenRows.rows(length: placement.length)
            let logitRows = item.logitRows.rows(length: placement.length)
            // Rows needing ln_f: the union of both selections (each is empty, the last row, or all).
            let normRows = hiddenRows.count >= logitRows.count ? hiddenRows : logitRows
            if !normRows.isEmpty {
                let first = placement.firstRow + normRows.lowerBound
                layerNorm(buffers.normed + first * C, buffers.hidden + first * C, weights.finalNormWeight.pointer,
                          weights.finalNormBias.pointer, eps: config.layerNormEpsilon, rows: normRows.count, C: C)
            }
            let hidden = Array(UnsafeBufferPointer(start: buffers.normed + (placement.firstRow + hiddenRows.lowerBound) * C,
                                                   count: hiddenRows.count * C))
            logitRowCount += logitRows.count
            outputs.append(ForwardOutput(hidden: hidden, logits: []))
        }
        guard logitRowCount > 0 else { return outputs }

        // Items that need only their one row's argmax, where the LM head has a guide: their rows go after
        // all others and take `greedyArgmax` (GreedyArgmax.swift), the others one product.
        let lmHead = weights.lmHead
        let guide = weights.lmHeadGuide
        let takesArgmax = items.indices.map { index in
            guide != nil && items[index].argmaxOnly && items[index].logitRows.rows(length: placed[index].length).count == 1
        }
        let argmaxItems = items.indices.filter { takesArgmax[$0] }

        // Gather the logit rows, the products, then hand each item its rows.
        scratch.reserveLogits(rows: logitRowCount, config: config)
        let gathered = scratch.gathered
        let logitBuffer = scratch.logits
        var row = 0
        for index in items.indices.filter({ !takesArgmax[$0] }) + argmaxItems {
            let logitRows = items[index].logitRows.rows(length: placed[index].length)
            (gathered + row * C).update(from: buffers.normed + (placed[index].firstRow + logitRows.lowerBound) * C,
                                        count: logitRows.count * C)
            row += logitRows.count
        }
        let fullRows = logitRowCount - argmaxItems.count
        matMul(logitBuffer, gathered, lmHead, nil, M: fullRows, threads: threads)
        let argmaxes = guide.map {
            greedyArgmax(gathered + fullRows * C, lmHead, guide: $0, M: argmaxItems.count, scratch: logitBuffer + fullRows * V, threads: threads)
        } ?? []
        row = 0
        for (index, item) in items.enumerated() where !takesArgmax[index] {
            let logitRows = item.logitRows.rows(length: placed[index].length)
            guard !logitRows.isEmpty else { continue }
            outputs[index].logits = Array(UnsafeBufferPointer(start: logitBuffer + row * V, count: logitRows.count * V))
            row += logitRows.count
        }
        for (position, index) in argmaxItems.enumerated() {
            if let argmax = argmaxes[position] {
                outputs[index].argmax = [argmax]
            } else {
                // Undecided: the row's logits after all.
                let logits = logitBuffer + row * V
                matMul(logits, gathered + row * C, lmHead, nil, M: 1, threads: threads)
                outputs[index].logits = Array(UnsafeBufferPointer(start: logits, count: V))
            }
            row += 1
        }
        return outputs
    }
}

// MARK: - Scratch memory

/// Buffers reused across forward calls, grown when a call needs more rows; never shrunk.
final class Scratch {
    private(set) var rows = 0
    private(set) var logitRows = 0
    var hidden = Scratch.empty      // (rows, C) residual stream
    var normed = Scratch.empty      // (rows, C) LayerNorm output
    var qkv = Scratch.empty         // (rows, 3C) fused q, k, v projections
    var keyHeads = Scratch.empty    // (rows, C) keys of each item's chunk, head by head (gatherChunkHeads)
    var valueHeads = Scratch.empty  // (rows, C) values of each item's chunk, head by head
    var attended = Scratch.empty    // (rows, C) attention output, heads merged
    var projected = Scratch.empty   // (rows, C) out_proj / c_proj output
    var inner = Scratch.empty       // (rows, I) MLP hidden
    var gathered = Scratch.empty    // (logitRows, C) rows for the LM head
    var logits = Scratch.empty      // (logitRows, V)
    var scores = Scratch.empty      // (workers, maxPositions × attentionQueryGroup) attention scores
    var scoresPerWorker = 0
    let workers: Int

    init(workers: Int) { self.workers = workers }

    nonisolated(unsafe) static let empty = UnsafeMutablePointer<Float>.allocate(capacity: 1)

    func reserve(rows needed: Int, config: GPTNeoConfig) {
        if scoresPerWorker < config.maxPositionEmbeddings * attentionQueryGroup {
            scoresPerWorker = config.maxPositionEmbeddings * attentionQueryGroup
            replace(&scores, count: workers * scoresPerWorker)
        }
        guard needed > rows else { return }
        let grown = max(needed, rows * 2)
        let C = config.hiddenSize
        for keyPath in [\Scratch.hidden, \.normed, \.keyHeads, \.valueHeads, \.attended, \.projected] {
            replace(&self[keyPath: keyPath], count: grown * C)
        }
        replace(&qkv, count: grown * 3 * C)
        replace(&inner, count: grown * config.intermediateSize)
        rows = grown
    }

    func reserveLogits(rows needed: Int, config: GPTNeoConfig) {
        guard needed > logitRows else { return }
        let grown = max(needed, logitRows * 2)
        replace(&gathered, count: grown * config.hiddenSize)
        replace(&logits, count: grown * config.vocabSize)
        logitRows = grown
    }

    private func replace(_ pointer: inout UnsafeMutablePointer<Float>, count: Int) {
        if pointer != Scratch.empty { pointer.deallocate() }
        pointer = .allocate(capacity: max(1, count))
        pointer.initialize(repeating: 0, count: max(1, count))
    }

    deinit {
        for pointer in [hidden, normed, qkv, keyHeads, valueHeads, attended, projected, inner, gathered, logits, scores]
        where pointer != Scratch.empty { pointer.deallocate() }
    }
}
