import Foundation

// Task heads on top of GPT-Neo's final hidden states (after `ln_f`), as in transformers'
// `modeling_gpt_neo.py`: GPTNeoForSequenceClassification (`score`, Linear without bias, on the last
// non-padding token), GPTNeoForTokenClassification (`classifier`, Linear with bias, on every token) and
// GPTNeoForQuestionAnswering (`qa_outputs`, Linear with bias, 2 outputs: start and end logits).
// The body is shared: one `GPTNeoModel` in memory serves generation and every head.

// MARK: - Errors

/// What a bad head configuration causes (file errors are the loader's `EngineError`); every message names the file or tensor.
public enum HeadsError: Error, Sendable, Equatable, CustomStringConvertible {
    case fileNotReadable(path: String)
    case malformedConfiguration(path: String, reason: String)
    case missingTensor(tensor: String, path: String)
    case shapeMismatch(tensor: String, expected: [Int], actual: [Int])
    case labelCountMismatch(head: TaskHeadKind, labels: Int, outputs: Int)
    case duplicateHead(TaskHeadKind)
    /// Hidden states handed to a head do not have `rows × hiddenSize` values.
    case hiddenStatesMismatch(values: Int, rows: Int, hiddenSize: Int)

    public var description: String {
        switch self {
        case .fileNotReadable(let path): "cannot read head file \(path)"
        case .malformedConfiguration(let path, let reason): "malformed head configuration \(path): \(reason)"
        case .missingTensor(let tensor, let path): "tensor \(tensor) is missing from \(path)"
        case .shapeMismatch(let tensor, let expected, let actual): "tensor \(tensor) has shape \(actual), expected \(expected)"
        case .labelCountMismatch(let head, let labels, let outputs):
            "\(head.rawValue) head has \(outputs) outputs but \(labels) labels"
        case .duplicateHead(let head): "more than one \(head.rawValue) head configured"
        case .hiddenStatesMismatch(let values, let rows, let hiddenSize):
            "hidden states have \(values) values, expected \(rows) rows × \(hiddenSize)"
        }
    }
}

// MARK: - Kinds

/// The tasks a head serves; raw values are the names used in configuration files and `/v1/models`.
public enum TaskHeadKind: String, Codable, Sendable, CaseIterable {
    case sequenceClassification = "sequence-classification"
    case tokenClassification = "token-classification"
    case questionAnswering = "question-answering"

    /// The checkpoint key prefix of this head's tensors.
    public var tensorPrefix: String {
        switch self {
        case .sequenceClassification: "score"
        case .tokenClassification: "classifier"
        case .questionAnswering: "qa_outputs"
        }
    }

    var hasBias: Bool { self != .sequenceClassification }
}

// MARK: - Linear

/// `nn.Linear`: `weight` is (outputs, inputs) row-major as stored, `bias` (outputs) or nil.
public struct LinearHead: Sendable {
    public let weight: [Float]
    public let bias: [Float]?
    public let outputs: Int
    public let inputs: Int

    public init(weight: [Float], bias: [Float]?, outputs: Int, inputs: Int) {
        precondition(weight.count == outputs * inputs && (bias == nil || bias!.count == outputs), "linear head shapes")
        self.weight = weight; self.bias = bias; self.outputs = outputs; self.inputs = inputs
    }

    /// hidden (rows, inputs) -> (rows, outputs). Heads have a handful of outputs, so a plain loop is enough.
    public func apply(_ hidden: [Float], rows: Int) throws -> [Float] {
        guard rows >= 0, hidden.count == rows * inputs else {
            throw HeadsError.hiddenStatesMismatch(values: hidden.count, rows: rows, hiddenSize: inputs)
        }
        var out = [Float](repeating: 0, count: rows * outputs)
        hidden.withUnsafeBufferPointer { h in
            weight.withUnsafeBufferPointer { w in
                for r in 0..<rows {
                    for o in 0..<outputs {
                        var sum: Float = 0
                        for i in 0..<inputs { sum += h[r * inputs + i] * w[o * inputs + i] }
                        out[r * outputs + o] = sum + (bias?[o] ?? 0)
                    }
                }
            }
        }
        return out
    }
}

// MARK: - Heads

/// `score` on the hidden state of the last non-padding token.
public struct SequenceClassificationHead: Sendable {
    public let linear: LinearHead
    /// `id2label` in id order.
    public let labels: [String]
    /// `problem_type` from the config (`multi_label_classification` switches the default to sigmoid).
    public let problemType: String?
    /// `pad_token_id`; GPT-Neo checkpoints often set it to the EOS id.
    public let padTokenID: Int?

    public init(linear: LinearHead, labels: [String], problemType: String?, padTokenID: Int?) {
        self.linear = linear; self.labels = labels; self.problemType = problemType; self.padTokenID = padTokenID
    }

    /// transformers' rule: the rightmost token that is not `pad_token_id` (so a trailing EOS is skipped when
    /// pad == EOS); 0 when every token is padding; the last token when there is no pad id.
    public func classificationRow(tokens: [Int]) -> Int {
        guard let pad = padTokenID else { return tokens.count - 1 }
        return tokens.lastIndex { $0 != pad } ?? 0
    }

    /// hidden: (tokens.count, hiddenSize) -> one logit per label.
    public func logits(hidden: [Float], tokens: [Int]) throws -> [Float] {
        let inputs = linear.inputs
        guard !tokens.isEmpty, hidden.count == tokens.count * inputs else {
            throw HeadsError.hiddenStatesMismatch(values: hidden.count, rows: tokens.count, hiddenSize: inputs)
        }
        let row = classificationRow(tokens: tokens)
        return try linear.apply(Array(hidden[row * inputs..<(row + 1) * inputs]), rows: 1)
    }
}

/// `classifier` on every token.
public struct TokenClassificationHead: Sendable {
    public let linear: LinearHead
    public let labels: [String]

    public init(linear: LinearHead, labels: [String]) { self.linear = linear; self.labels = labels }

    /// hidden (rows, hiddenSize) -> (rows, labels).
    public func logits(hidden: [Float], rows: Int) throws -> [Float] { try linear.apply(hidden, rows: rows) }
}

/// `qa_outputs`: column 0 is the start logit, column 1 the end logit.
public struct QuestionAnsweringHead: Sendable {
    public let linear: LinearHead

    public init(linear: LinearHead) { self.linear = linear }

    public func logits(hidden: [Float], rows: Int) throws -> (start: [Float], end: [Float]) {
        let both = try linear.apply(hidden, rows: rows)
        return ((0..<rows).map { both[2 * $0] }, (0..<rows).map { both[2 * $0 + 1] })
    }
}

/// The heads one body carries (any subset).
public struct TaskHeads: Sendable {
    public var sequenceClassification: SequenceClassificationHead?
    public var tokenClassification: TokenClassificationHead?
    public var questionAnswering: QuestionAnsweringHead?

    public init(sequenceClassification: SequenceClassificationHead? = nil,
                tokenClassification: TokenClassificationHead? = nil,
                questionAnswering: QuestionAnsweringHead? = nil) {
        self.sequenceClassification = sequenceClassification
        self.tokenClassification = tokenClassification
        self.questionAnswering = questionAnswering
    }

    /// The kinds present, in `TaskHeadKind.allCases` order.
    public var kinds: [TaskHeadKind] {
        TaskHeadKind.allCases.filter {
            switch $0 {
            case .sequenceClassification: sequenceClassification != nil
            case .tokenClassification: tokenClassification != nil
            case .questionAnswering: questionAnswering != nil
            }
        }
    }
}
