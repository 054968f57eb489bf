import Foundation

// Port of transformers' `configuration_gpt_neo.py` (`GPTNeoConfig`): the same keys, the same defaults for
// absent keys, the same expansion of `attention_types` and the same consistency check.

// MARK: - The decoded configuration

/// `config.json` of a GPT-Neo checkpoint, decoded completely (see `modeling_gpt_neo.py`'s `GPTNeoConfig`).
public struct GPTNeoConfig: Sendable, Equatable {
    public enum AttentionKind: String, Sendable, Equatable { case global, local }
    /// The MLP's activation. `gelu_new` and `gelu_pytorch_tanh` are the same tanh approximation.
    public enum Activation: String, Sendable, Equatable { case geluNew = "gelu_new", geluPytorchTanh = "gelu_pytorch_tanh" }
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    /// `intermediate_size`, with null resolved to 4 × hidden.
    public var intermediateSize: Int
    public var maxPositionEmbeddings: Int
    public var windowSize: Int
    /// One entry per layer, expanded from `attention_types`.
    public var attentionLayers: [AttentionKind]
    public var layerNormEpsilon: Float
    public var activation: Activation
    public var bosTokenID: Int?
    public var eosTokenID: Int?
    public var padTokenID: Int?
    /// Labels of a classification head, by index (from `id2label`); empty when absent.
    public var labels: [Int: String]
    /// `problem_type` (`single_label_classification`, `multi_label_classification`, `regression`) or nil.
    public var problemType: String?
    /// `tie_word_embeddings`: the LM head is `wte` (true for every published GPT-Neo).
    public var tieWordEmbeddings: Bool

    /// Size of one attention head.
    public var headDim: Int { hiddenSize / numHeads }

    /// Reads and validates `config.json` at `url`.
    public static func load(contentsOf url: URL) throws -> GPTNeoConfig {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else { throw EngineError.fileMissing(path: path) }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw EngineError.unreadableFile(path: path, reason: "\(error)")
        }
        return try decode(data, path: path)
    }

    /// Decodes and validates the bytes of a `config.json`; `path` names it in errors.
    public static func decode(_ data: Data, path: String = "config.json") throws -> GPTNeoConfig {
        let raw: RawConfig
        do { raw = try JSONDecoder().decode(RawConfig.self, from: data) } catch let error as DecodingError {
            throw EngineError.invalidConfig(path: path, reason: describe(error))
        } catch {
            throw EngineError.invalidConfig(path: path, reason: "\(error)")
        }
        return try raw.validated(path: path)
    }
}

// MARK: - Raw JSON

/// Every key we read, optional, with transformers' defaults applied in `validated` (as `from_pretrained`,
/// which has a default for every GPT-Neo key). Other keys (`summary_*`, dropouts, `gradient_checkpointing`,
/// `torch_dtype`, `architectures`...) are ignored. `model_type`, when present, must be `gpt_neo`: another
/// architecture's config would otherwise decode into defaults and fail later with confusing shapes.
private struct RawConfig: Decodable {
    var modelType: String?
    var vocabSize: Int?
    var maxPositionEmbeddings: Int?
    var hiddenSize: Int?
    var numLayers: Int?
    var attentionTypes: [AttentionTypeGroup]?
    var attentionLayers: [String]?
    var numHeads: Int?
    var intermediateSize: Int?
    var windowSize: Int?
    var activationFunction: String?
    var layerNormEpsilon: Double?
    var bosTokenID: TokenIDField?
    var eosTokenID: TokenIDField?
    var padTokenID: TokenIDField?
    var numLabels: Int?
    var id2label: [String: String]?
    var problemType: String?
    var tieWordEmbeddings: Bool?

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type"
        case vocabSize = "vocab_size"
        case maxPositionEmbeddings = "max_position_embeddings"
        case hiddenSize = "hidden_size"
        case numLayers = "num_layers"
        case attentionTypes = "attention_types"
        case attentionLayers = "attention_layers"
        case numHeads = "num_heads"
        case intermediateSize = "intermediate_size"
        case windowSize = "window_size"
        case activationFunction = "activation_function"
        case layerNormEpsilon = "layer_norm_epsilon"
        case bosTokenID = "bos_token_id"
        case eosTokenID = "eos_token_id"
        case padTokenID = "pad_token_id"
        case numLabels = "num_labels"
        case id2label
        case problemType = "problem_type"
        case tieWordEmbeddings = "tie_word_embeddings"
    }

    func validated(path: String) throws -> GPTNeoConfig {
        func invalid(_ reason: String) -> EngineError { .invalidConfig(path: path, reason: reason) }
        if let modelType, modelType != "gpt_neo" {
            throw invalid("model_type is \"\(modelType)\", not \"gpt_neo\": this server runs GPT-Neo checkpoints only")
        }
        let hidden = hiddenSize ?? 2048
        let heads = numHeads ?? 16
        let layers = numLayers ?? 24
        let vocab = vocabSize ?? 50257
        let positions = maxPositionEmbeddings ?? 2048
        let window = windowSize ?? 256
        for (name, value) in [("hidden_size", hidden), ("num_heads", heads), ("num_layers", layers),
                              ("vocab_size", vocab), ("max_position_embeddings", positions), ("window_size", window)]
        where value <= 0 {
            throw invalid("\(name) must be positive, got \(value)")
        }
        guard hidden % heads == 0 else { throw invalid("hidden_size \(hidden) is not divisible by num_heads \(heads)") }
        let inner = intermediateSize ?? 4 * hidden
        guard inner > 0 else { throw invalid("intermediate_size must be positive, got \(inner)") }
        let epsilon = layerNormEpsilon ?? 1e-5
        guard epsilon > 0, epsilon.isFinite else { throw invalid("layer_norm_epsilon must be positive, got \(epsilon)") }

        let activationName = activationFunction ?? "gelu_new"
        guard let activation = GPTNeoConfig.Activation(rawValue: activationName) else {
            throw EngineError.unknownActivation(path: path, name: activationName)
        }

        // `attention_types` = [[["global", "local"], 12]] expands to 24 alternating entries.
        let groups = attentionTypes ?? [AttentionTypeGroup(kinds: ["global", "local"], repeats: 12)]
        var expanded: [String] = []
        for group in groups {
            guard group.repeats >= 0 else { throw invalid("negative repeat count \(group.repeats) in attention_types") }
            for _ in 0..<group.repeats { expanded += group.kinds }
        }
        if let declared = attentionLayers, declared != expanded {
            throw EngineError.attentionLayersMismatch(path: path, fromAttentionTypes: expanded, attentionLayers: declared)
        }
        guard expanded.count == layers else {
            throw invalid("attention_types gives \(expanded.count) layers but num_layers is \(layers)")
        }
        var kinds: [GPTNeoConfig.AttentionKind] = []
        for name in expanded {
            guard let kind = GPTNeoConfig.AttentionKind(rawValue: name) else {
                throw invalid("attention type \"\(name)\" is neither \"global\" nor \"local\"")
            }
            kinds.append(kind)
        }

        var labels: [Int: String] = [:]
        if let id2label {
            for (key, label) in id2label {
                guard let index = Int(key), index >= 0 else { throw invalid("id2label key \"\(key)\" is not an index") }
                labels[index] = label
            }
        } else if let numLabels {
            guard numLabels >= 0 else { throw invalid("num_labels must not be negative, got \(numLabels)") }
            for index in 0..<numLabels { labels[index] = "LABEL_\(index)" }
        }
        if let numLabels, !labels.isEmpty, numLabels != labels.count {
            throw invalid("num_labels is \(numLabels) but id2label has \(labels.count) entries")
        }

        return GPTNeoConfig(
            vocabSize: vocab, hiddenSize: hidden, numLayers: layers, numHeads: heads, intermediateSize: inner,
            maxPositionEmbeddings: positions, windowSize: window, attentionLayers: kinds,
            layerNormEpsilon: Float(epsilon), activation: activation,
            // transformers' defaults; an explicit null reads like an absent key here.
            bosTokenID: bosTokenID?.value ?? 50256, eosTokenID: eosTokenID?.value ?? 50256,
            padTokenID: padTokenID?.value, labels: labels, problemType: problemType,
            tieWordEmbeddings: tieWordEmbeddings ?? true)
    }
}

/// One `[["global", "local"], 12]` entry of `attention_types`: a heterogeneous JSON array.
private struct AttentionTypeGroup: Decodable {
    var kinds: [String]
    var repeats: Int
    init(kinds: [String], repeats: Int) { self.kinds = kinds; self.repeats = repeats }
    init(from decoder: Decoder) throws {
        var container = try decoder.unkeyedContainer()
        kinds = try container.decode([String].self)
        repeats = try container.decode(Int.self)
    }
}

/// A token id field: an integer, `null`, or (in some newer configs) a list whose first entry is used.
private struct TokenIDField: Decodable {
    var value: Int?
    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { value = nil }
        else if let single = try? container.decode(Int.self) { value = single }
        else { value = try container.decode([Int].self).first }
    }
}

// MARK: - Error text

private func describe(_ error: DecodingError) -> String {
    func keyPath(_ context: DecodingError.Context) -> String {
        context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    }
    switch error {
    case .typeMismatch(_, let context), .valueNotFound(_, let context):
        return "\(keyPath(context)): \(context.debugDescription)"
    case .keyNotFound(let key, let context):
        return "\(keyPath(context)): missing key \(key.stringValue)"
    case .dataCorrupted(let context):
        return "\(keyPath(context).isEmpty ? "JSON" : keyPath(context)): \(context.debugDescription)"
    @unknown default:
        return "\(error)"
    }
}
