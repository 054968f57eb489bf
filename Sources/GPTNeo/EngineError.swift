import Foundation

// MARK: - Errors

/// A tensor whose shape in the checkpoint is not the one the model needs.
public struct ShapeMismatch: Sendable, Equatable, CustomStringConvertible {
    public var tensor: String
    public var expected: [Int]
    public var actual: [Int]
    public init(tensor: String, expected: [Int], actual: [Int]) {
        self.tensor = tensor; self.expected = expected; self.actual = actual
    }
    public var description: String { "\(tensor): expected \(expected), found \(actual)" }
}

/// Everything a user can get wrong when loading a checkpoint or calling the engine.
/// Paths are the files concerned, as given (directory + file name).
public enum EngineError: Error, Sendable, Equatable, CustomStringConvertible {
    // MARK: Files
    case fileMissing(path: String)
    /// `--model OWNER/NAME` names a repository the Hugging Face cache does not hold (at that revision).
    case modelNotInCache(repoID: String, revision: String, lookedIn: [String], reason: String)
    /// A checkpoint directory without any weight file transformers would recognise.
    case noWeights(directory: String, lookedFor: [String])
    case unreadableFile(path: String, reason: String)
    /// Weights in a format that is not read (PyTorch's legacy pre-1.6 format, an unknown layout).
    case unsupportedFormat(path: String, reason: String)
    /// A zip archive (PyTorch's format) whose structure is broken or not as `torch.save` writes it.
    case malformedArchive(path: String, reason: String)
    /// The pickle of a PyTorch archive is broken (ends early, refers to nothing, exceeds a limit...).
    case malformedPickle(path: String, offset: Int, reason: String)
    /// The pickle names a global outside the state-dict allow-list (`os.system`...). Pickles are never
    /// executed: this is where a malicious file stops.
    case forbiddenGlobal(path: String, global: String)
    /// A pickle opcode a state dict never needs.
    case forbiddenOpcode(path: String, offset: Int, opcode: String)
    /// A tensor's layout (shape, strides, offset, storage) is impossible.
    case malformedTensor(path: String, tensor: String, reason: String)
    /// Shorter than the 8-byte header length that starts every safetensors file.
    case truncatedFile(path: String, size: Int)
    /// The header length field points past the end of the file.
    case headerBeyondFile(path: String, headerLength: UInt64, fileSize: Int)
    case malformedHeader(path: String, reason: String)
    /// A tensor's byte range is outside the data section (often a truncated download).
    case tensorOutOfBounds(path: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    /// The byte range does not hold shape × dtype size bytes.
    case tensorSizeMismatch(path: String, tensor: String, shape: [Int], dtype: String, byteCount: Int)
    /// The tensor exists but is stored in a type that is not F32, F16 or BF16.
    case unsupportedDType(path: String, tensor: String, dtype: String)

    // MARK: Checkpoint contents
    /// Every tensor the model needs that the checkpoint lacks, all at once.
    case missingTensors(directory: String, names: [String])
    /// Every tensor with a wrong shape, all at once.
    case wrongShapes(directory: String, mismatches: [ShapeMismatch])

    // MARK: config.json
    case invalidConfig(path: String, reason: String)
    case unknownActivation(path: String, name: String)
    case attentionLayersMismatch(path: String, fromAttentionTypes: [String], attentionLayers: [String])

    // MARK: Forward pass
    case tokenOutOfVocabulary(token: Int, vocabSize: Int)
    /// The positions asked for exceed `max_position_embeddings`.
    case contextTooLong(requested: Int, limit: Int)
    /// The positions asked for exceed the cache's capacity.
    case cacheCapacityExceeded(requested: Int, capacity: Int)
    /// The cache was made for a model of another shape.
    case cacheMismatch(reason: String)

    public var description: String {
        switch self {
        case .fileMissing(let path): return "\(path): file not found"
        case .modelNotInCache(let repoID, let revision, let lookedIn, let reason):
            let places = lookedIn.isEmpty ? "" : "; looked in \(lookedIn.joined(separator: ", "))"
            return "\(repoID) (revision \(revision)) is not in the Hugging Face cache: \(reason)\(places). "
                + "Download it with: \(HubCache.downloadCommand(repoID: repoID, revision: revision))"
        case .noWeights(let directory, let names):
            return "\(directory): no weights found (looked for \(names.joined(separator: ", ")))"
        case .unreadableFile(let path, let reason): return "\(path): cannot read: \(reason)"
        case .unsupportedFormat(let path, let reason): return "\(path): unsupported weights format: \(reason)"
        case .truncatedFile(let path, let size):
            return "\(path): truncated: \(size) bytes, shorter than the 8-byte safetensors header length"
        case .headerBeyondFile(let path, let length, let size):
            return "\(path): header length \(length) reaches beyond the end of the file (\(size) bytes); truncated or not safetensors"
        case .malformedHeader(let path, let reason): return "\(path): malformed safetensors header: \(reason)"
        case .malformedArchive(let path, let reason): return "\(path): malformed PyTorch zip archive: \(reason)"
        case .malformedPickle(let path, let offset, let reason): return "\(path): malformed pickle at byte \(offset): \(reason)"
        case .forbiddenGlobal(let path, let global):
            return "\(path): refused: the pickle calls \(global), which a PyTorch state dict never does (pickles are not executed; only tensor-rebuilding globals are allowed)"
        case .forbiddenOpcode(let path, let offset, let opcode):
            return "\(path): refused: pickle opcode \(opcode) at byte \(offset) is not used by PyTorch state dicts"
        case .malformedTensor(let path, let tensor, let reason): return "\(path): tensor \(tensor): \(reason)"
        case .tensorOutOfBounds(let path, let tensor, let begin, let end, let dataSize):
            return "\(path): tensor \(tensor) occupies bytes \(begin)..<\(end) but its data region has \(dataSize) bytes (truncated file or bad offsets)"
        case .tensorSizeMismatch(let path, let tensor, let shape, let dtype, let byteCount):
            return "\(path): tensor \(tensor) of shape \(shape) and dtype \(dtype) does not fit its \(byteCount)-byte range"
        case .unsupportedDType(let path, let tensor, let dtype):
            return "\(path): tensor \(tensor) has dtype \(dtype); only F32, F16 and BF16 are supported"
        case .missingTensors(let directory, let names):
            return "\(directory): checkpoint lacks \(names.count) tensor(s): \(names.joined(separator: ", "))"
        case .wrongShapes(let directory, let mismatches):
            return "\(directory): wrong tensor shapes: \(mismatches.map(\.description).joined(separator: "; "))"
        case .invalidConfig(let path, let reason): return "\(path): invalid config: \(reason)"
        case .unknownActivation(let path, let name):
            return "\(path): unknown activation_function \"\(name)\" (supported: gelu_new, gelu_pytorch_tanh)"
        case .attentionLayersMismatch(let path, let expanded, let declared):
            return "\(path): attention_types expands to \(expanded) but attention_layers is \(declared)"
        case .tokenOutOfVocabulary(let token, let vocabSize):
            return "token id \(token) is outside the vocabulary (0..<\(vocabSize))"
        case .contextTooLong(let requested, let limit):
            return "\(requested) positions requested but the model's context is \(limit) (max_position_embeddings)"
        case .cacheCapacityExceeded(let requested, let capacity):
            return "\(requested) positions requested but the KV cache holds \(capacity)"
        case .cacheMismatch(let reason): return "KV cache does not fit the model: \(reason)"
        }
    }
}
