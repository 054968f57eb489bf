import Foundation
import GPTNeo

// MARK: - Log-probabilities of raw logits
// OpenAI's `logprobs` report the model's own distribution: the log-softmax of the raw logits, before
// temperature, penalties, bias or truncation. Everything here is a pure function of one logits row,
// so the numbers cannot depend on what else was in the batch.

/// log-softmax of one row: the exponentials in Float lanes, their sum and the logarithm in Double,
/// rounded once to Float (torch computes all of it in Float; the two agree to within a few ulps).
struct LogSoftmax {
    /// max(logits)
    let maximum: Float
    /// log(Σ exp(logit - maximum)), in Double
    let logSumExp: Double

    init(_ logits: UnsafeBufferPointer<Float>) {
        precondition(!logits.isEmpty, "log-softmax of an empty row")
        let maximum = largest(logits)
        self.maximum = maximum
        self.logSumExp = maximum.isFinite ? log(sumOfExpDifferences(logits.baseAddress!, count: logits.count, shift: maximum)) : 0
    }

    func logprob(_ logit: Float) -> Float {
        Float(Double(logit) - Double(maximum) - logSumExp)
    }
}

/// The `count` largest entries of `logits`, best first; ties go to the lower index (as a stable sort would).
func topEntries(_ logits: UnsafeBufferPointer<Float>, count: Int) -> [(index: Int, value: Float)] {
    guard count > 0 else { return [] }
    var best: [(index: Int, value: Float)] = []
    best.reserveCapacity(count + 1)
    for (index, value) in logits.enumerated() {
        // Strictly greater than the current last: an equal value at a higher index loses the tie.
        if best.count == count, let last = best.last, !(value > last.value) { continue }
        var position = best.count
        while position > 0 && value > best[position - 1].value { position -= 1 }
        best.insert((index, value), at: position)
        if best.count > count { best.removeLast() }
    }
    return best
}

/// The reported log-probability of `tokenID` and the `topCount` best alternatives in `logits`.
func tokenLogprob(tokenID: Int, logits: UnsafeBufferPointer<Float>, topCount: Int) -> TokenLogprob {
    let softmax = LogSoftmax(logits)
    let top = topEntries(logits, count: topCount).map { (tokenID: $0.index, logprob: softmax.logprob($0.value)) }
    return TokenLogprob(tokenID: tokenID, logprob: softmax.logprob(logits[tokenID]), top: top)
}
