import Foundation
import Tokenizer

// Post-processing of transformers' token-classification pipeline (`pipelines/token_classification.py`)
// for a GPT-2 byte-level tokenizer: softmax per token, then either raw tokens ("none"), B-/I- grouping
// ("simple"), or word-level agreement first ("first", "average", "max") followed by grouping.
// GPT-2's BPE has no continuing-subword prefix, so a token continues a word when it starts after
// position 0 and neither it nor the character before it is a space (the pipeline's fallback heuristic).

/// `aggregation_strategy`.
public enum AggregationStrategy: String, Codable, Sendable, CaseIterable {
    case none, simple, first, average, max
}

/// One entity as the pipeline reports it: `entity` and `index` with "none", `entityGroup` otherwise.
public struct TokenEntity: Sendable, Equatable {
    public var entity: String?
    public var entityGroup: String?
    public var score: Double
    public var index: Int?
    public var word: String
    /// Offsets in Unicode scalars of the input (Python string indices), end exclusive.
    public var start: Int
    public var end: Int
}

public enum TokenClassification {
    /// A token before aggregation (`gather_pre_entities`).
    struct PreEntity {
        var word: String
        var scores: [Float]
        var start: Int
        var end: Int
        var index: Int
        var isSubword: Bool
    }

    /// An entity before grouping: a token ("simple") or a word ("first", "average", "max").
    struct Scored {
        var label: String
        var score: Float
        var index: Int?
        var word: String
        var start: Int
        var end: Int
    }

    /// - Parameters:
    ///   - logits: (tokens.count, labels.count), row-major.
    ///   - tokenBytes: the bytes of a token id (the tokenizer's `bytes(of:)`).
    ///   - unknownTokenID: GPT-2's `unk_token_id` (`<|endoftext|>`): such a token is reported with its text.
    ///   - ignoreLabels: entities with these labels (or groups) are dropped; the pipeline's default is ["O"].
    public static func entities(text: String, tokens: [TokenSpan], logits: [Float], labels: [String],
                                tokenBytes: (Int) -> [UInt8], unknownTokenID: Int?,
                                strategy: AggregationStrategy, ignoreLabels: [String] = ["O"]) -> [TokenEntity] {
        precondition(logits.count == tokens.count * labels.count, "one logit row per token")
        let scalars = Array(text.unicodeScalars)
        let width = labels.count
        var pre: [PreEntity] = []
        for (index, token) in tokens.enumerated() {
            let scores = softmaxFloat32(Array(logits[index * width..<(index + 1) * width]))
            let start = token.start, end = token.end
            var word = ByteLevel.spell(tokenBytes(token.id))
            // sentence[start-1 : start+1] has no space (Python slicing clamps at the end).
            let window = scalars[max(start - 1, 0)..<min(start + 1, scalars.count)]
            var isSubword = start > 0 && !window.contains(" ")
            if token.id == unknownTokenID {
                word = String(String.UnicodeScalarView(scalars[min(start, scalars.count)..<min(end, scalars.count)]))
                isSubword = false
            }
            pre.append(PreEntity(word: word, scores: scores, start: start, end: end, index: index, isSubword: isSubword))
        }

        let scored: [Scored]
        switch strategy {
        case .none, .simple:
            scored = pre.map { entity in
                let best = argmax(entity.scores)
                return Scored(label: labels[best], score: entity.scores[best], index: entity.index, word: entity.word,
                              start: entity.start, end: entity.end)
            }
        case .first, .average, .max:
            scored = words(pre, strategy: strategy, labels: labels)
        }

        let entities: [TokenEntity]
        if strategy == .none {
            entities = scored.map {
                TokenEntity(entity: $0.label, entityGroup: nil, score: Double($0.score), index: $0.index, word: $0.word,
                            start: $0.start, end: $0.end)
            }
        } else {
            entities = group(scored)
        }
        return entities.filter { entity in
            !(entity.entity.map(ignoreLabels.contains) ?? false) && !(entity.entityGroup.map(ignoreLabels.contains) ?? false)
        }
    }

    // MARK: - Words

    /// `aggregate_words`: a word is a token that is not a subword plus the subwords after it.
    static func words(_ pre: [PreEntity], strategy: AggregationStrategy, labels: [String]) -> [Scored] {
        var result: [Scored] = []
        var group: [PreEntity] = []
        for entity in pre {
            if !group.isEmpty && !entity.isSubword {
                result.append(word(group, strategy: strategy, labels: labels))
                group = []
            }
            group.append(entity)
        }
        if !group.isEmpty { result.append(word(group, strategy: strategy, labels: labels)) }
        return result
    }

    /// `aggregate_word`.
    static func word(_ group: [PreEntity], strategy: AggregationStrategy, labels: [String]) -> Scored {
        let text = ByteLevel.join(group.map(\.word))
        let scores: [Float]
        switch strategy {
        case .first:
            scores = group[0].scores
        case .max:
            // The first token whose best score is the largest (Python's max keeps the first).
            var best = group[0]
            for entity in group.dropFirst() where entity.scores.max()! > best.scores.max()! { best = entity }
            scores = best.scores
        default:  // .average: the mean score vector, in float32
            scores = (0..<labels.count).map { label in
                group.reduce(Float(0)) { $0 + $1.scores[label] } / Float(group.count)
            }
        }
        let best = argmax(scores)
        return Scored(label: labels[best], score: scores[best], index: nil, word: text,
                      start: group[0].start, end: group[group.count - 1].end)
    }

    // MARK: - Grouping

    /// `get_tag`: "B-X" -> (B, X), "I-X" -> (I, X), anything else -> (I, itself).
    static func tag(_ label: String) -> (isBegin: Bool, tag: String) {
        if label.hasPrefix("B-") { return (true, String(label.dropFirst(2))) }
        if label.hasPrefix("I-") { return (false, String(label.dropFirst(2))) }
        return (false, label)
    }

    /// `group_entities`: adjacent entities with the same tag join unless the later one begins with B-.
    static func group(_ entities: [Scored]) -> [TokenEntity] {
        var groups: [TokenEntity] = []
        var current: [Scored] = []
        for entity in entities {
            if let last = current.last {
                let (isBegin, tag) = tag(entity.label)
                if tag == self.tag(last.label).tag && !isBegin {
                    current.append(entity)
                    continue
                }
                groups.append(subGroup(current))
                current = []
            }
            current.append(entity)
        }
        if !current.isEmpty { groups.append(subGroup(current)) }
        return groups
    }

    /// `group_sub_entities`: the group's label is the first label after its first "-"; the score the mean.
    static func subGroup(_ entities: [Scored]) -> TokenEntity {
        let label = entities[0].label
        let name = label.firstIndex(of: "-").map { String(label[label.index(after: $0)...]) } ?? label
        let mean = entities.reduce(0.0) { $0 + Double($1.score) } / Double(entities.count)
        return TokenEntity(entity: nil, entityGroup: name, score: mean, index: nil,
                           word: ByteLevel.join(entities.map(\.word)),
                           start: entities[0].start, end: entities[entities.count - 1].end)
    }

    /// The first maximal index, as numpy's argmax.
    static func argmax(_ values: [Float]) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }
}

// MARK: - Token spans

/// A token id with its character range in the text (Unicode scalars, end exclusive), as HF's offset_mapping.
public struct TokenSpan: Sendable, Equatable {
    public var id: Int
    public var start: Int
    public var end: Int
    public init(id: Int, start: Int, end: Int) { self.id = id; self.start = start; self.end = end }
    public init(_ token: TokenWithOffsets) { self.init(id: token.id, start: token.start, end: token.end) }
}
