import Foundation

// Post-processing of transformers' text-classification pipeline (`pipelines/text_classification.py`):
// a function over the label logits (softmax, sigmoid or none; float32 as numpy computes it), the best
// label, and the labels sorted by score (ties keep label order, as Python's stable sort does).

/// `function_to_apply`.
public enum ClassificationFunction: String, Codable, Sendable, CaseIterable {
    case softmax, sigmoid, none

    /// The pipeline's default: none for regression, sigmoid for multi-label or a single label, else softmax.
    public static func `default`(labelCount: Int, problemType: String?) -> ClassificationFunction {
        if problemType == "regression" { return .none }
        if problemType == "multi_label_classification" || labelCount == 1 { return .sigmoid }
        return .softmax
    }

    /// Scores from logits, in float32.
    public func apply(_ logits: [Float]) -> [Float] {
        switch self {
        case .none: return logits
        case .sigmoid: return logits.map { 1 / (1 + Foundation.exp(-$0)) }
        case .softmax: return softmaxFloat32(logits)
        }
    }
}

/// Softmax as numpy computes it in the pipelines: shift by the max, exponentiate, divide by the sum.
func softmaxFloat32(_ logits: [Float]) -> [Float] {
    guard let maximum = logits.max() else { return [] }
    let shifted = logits.map { Foundation.exp($0 - maximum) }
    let sum = shifted.reduce(0, +)
    return shifted.map { $0 / sum }
}

/// One label and its score.
public struct LabelScore: Sendable, Equatable, Codable {
    public var label: String
    public var score: Double
    public init(label: String, score: Double) { self.label = label; self.score = score }
}

/// One classified input: the best label and the `top_k` best labels, best first.
public struct SequenceClassification: Sendable, Equatable {
    public var label: String
    public var score: Double
    public var scores: [LabelScore]
}

public enum TextClassification {
    /// `topK` nil returns every label; the pipeline's default is 1.
    public static func classify(logits: [Float], labels: [String], function: ClassificationFunction?,
                                problemType: String?, topK: Int?) -> SequenceClassification {
        precondition(logits.count == labels.count && !labels.isEmpty, "one logit per label")
        let function = function ?? .default(labelCount: labels.count, problemType: problemType)
        let scores = function.apply(logits)
        // argmax: the first maximal index, as numpy's.
        var best = 0
        for i in scores.indices where scores[i] > scores[best] { best = i }
        let ranked = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
        let kept = topK.map { Array(ranked.prefix(max($0, 0))) } ?? ranked
        return SequenceClassification(
            label: labels[best], score: Double(scores[best]),
            scores: kept.map { LabelScore(label: labels[$0], score: Double(scores[$0])) })
    }
}

// MARK: - Byte-level spelling (shared by the token-classification and QA post-processing)

/// GPT-2's byte <-> printable character table, which transformers' `convert_ids_to_tokens` spells
/// tokens with (`Ġ` for a space) and which the ByteLevel decoder inverts in `convert_tokens_to_string`.
enum ByteLevel {
    /// byte -> character scalar (array indexed by byte).
    static let byteToScalar: [Unicode.Scalar] = {
        var printable = Set<Int>()
        for range in [33...126, 161...172, 174...255] { printable.formUnion(range) }
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var extra = 0
        for byte in 0..<256 {
            if printable.contains(byte) { table[byte] = Unicode.Scalar(UInt8(byte)) } else {
                table[byte] = Unicode.Scalar(UInt32(256 + extra))!
                extra += 1
            }
        }
        return table
    }()

    static let scalarToByte: [Unicode.Scalar: UInt8] = {
        var map: [Unicode.Scalar: UInt8] = [:]
        for (byte, scalar) in byteToScalar.enumerated() { map[scalar] = UInt8(byte) }
        return map
    }()

    /// `convert_ids_to_tokens` for one token's bytes.
    static func spell(_ bytes: [UInt8]) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: bytes.map { byteToScalar[Int($0)] })
        return String(view)
    }

    /// `convert_tokens_to_string` (tokenizers' ByteLevel decoder): each token whose every scalar is in the
    /// table contributes those bytes, any other token its UTF-8 bytes; the whole is decoded lossily.
    static func join(_ tokens: [String]) -> String {
        var bytes: [UInt8] = []
        for token in tokens {
            var mapped: [UInt8] = []
            var complete = true
            for scalar in token.unicodeScalars {
                guard let byte = scalarToByte[scalar] else { complete = false; break }
                mapped.append(byte)
            }
            bytes += complete ? mapped : Array(token.utf8)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
