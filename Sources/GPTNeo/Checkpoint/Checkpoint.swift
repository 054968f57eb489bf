import Foundation

// MARK: - Checkpoint directory

/// The weights of a Hugging Face checkpoint directory, in the order transformers looks for them:
/// `model.safetensors`, the shards of `model.safetensors.index.json`, `pytorch_model.bin`, the shards of
/// `pytorch_model.bin.index.json`. Names resolve with or without the `transformer.` prefix, so a
/// `GPTNeoModel` checkpoint and a `GPTNeoForCausalLM` one read the same.
///
/// Every file goes through `openTensorFile`, so the body, task heads and every format share one set of
/// bounds checks. `reader()` collects every missing or misshapen tensor before failing, so one error
/// lists all problems.
public final class Checkpoint: @unchecked Sendable {
    /// The checkpoint directory, or the single file a checkpoint was opened from.
    public let directory: URL
    /// Every tensor name in every file, as stored.
    public let tensorNames: Set<String>
    private let fileOfTensor: [String: any TensorFile]

    /// The weight files transformers recognises, single file and index, by format.
    static let layouts: [(single: String, index: String)] = [
        ("model.safetensors", "model.safetensors.index.json"),
        ("pytorch_model.bin", "pytorch_model.bin.index.json"),
    ]

    /// Opens (maps and validates) the weight files of `directory`.
    public init(directory: URL) throws {
        self.directory = directory
        let fm = FileManager.default
        var fileOfTensor: [String: any TensorFile] = [:]
        search: do {
            for layout in Self.layouts {
                let single = directory.appendingPathComponent(layout.single)
                if fm.fileExists(atPath: single.path) {
                    let file = try openTensorFile(path: single.path)
                    for name in file.tensors.keys { fileOfTensor[name] = file }
                    break search
                }
                let index = directory.appendingPathComponent(layout.index)
                if fm.fileExists(atPath: index.path) {
                    fileOfTensor = try Self.openShards(index: index, directory: directory)
                    break search
                }
            }
            throw EngineError.noWeights(directory: directory.path, lookedFor: Self.layouts.flatMap { [$0.single, $0.index] })
        }
        self.fileOfTensor = fileOfTensor
        tensorNames = Set(fileOfTensor.keys)
    }

    /// A checkpoint of one weight file of any format (an extra task-head file).
    public init(file url: URL) throws {
        directory = url
        let file = try openTensorFile(path: url.path)
        fileOfTensor = file.tensors.mapValues { _ in file }
        tensorNames = Set(fileOfTensor.keys)
    }

    /// Opens each shard named in `index` once; maps every tensor name to its shard.
    private static func openShards(index: URL, directory: URL) throws -> [String: any TensorFile] {
        let shards = try readIndex(index)
        var opened: [String: any TensorFile] = [:]
        var fileOfTensor: [String: any TensorFile] = [:]
        for (name, shard) in shards.sorted(by: { $0.key < $1.key }) {
            let file: any TensorFile
            if let existing = opened[shard] { file = existing } else {
                file = try openTensorFile(path: directory.appendingPathComponent(shard).path)
                opened[shard] = file
            }
            // The index may list a tensor its shard lacks; it is then reported missing when asked for.
            if file.tensors[name] != nil { fileOfTensor[name] = file }
        }
        return fileOfTensor
    }

    /// `weight_map` of a sharded checkpoint's index: tensor name → shard file name.
    static func readIndex(_ url: URL) throws -> [String: String] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw EngineError.unreadableFile(path: url.path, reason: "\(error)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let weightMap = object["weight_map"] as? [String: String] else {
            throw EngineError.malformedHeader(path: url.path, reason: "no weight_map object of tensor name to shard file")
        }
        for shard in Set(weightMap.values) where shard.contains("/") || shard.hasPrefix(".") {
            throw EngineError.malformedHeader(path: url.path, reason: "shard name \(shard) is not a file in the checkpoint directory")
        }
        return weightMap
    }

    // MARK: Names

    /// The stored name for `name`: itself, or with the `transformer.` prefix added or removed.
    public func resolve(_ name: String) -> String? {
        if fileOfTensor[name] != nil { return name }
        let prefix = "transformer."
        if name.hasPrefix(prefix) {
            let bare = String(name.dropFirst(prefix.count))
            if fileOfTensor[bare] != nil { return bare }
        } else if fileOfTensor[prefix + name] != nil {
            return prefix + name
        }
        return nil
    }

    public func contains(_ name: String) -> Bool { resolve(name) != nil }

    /// Shape of a stored tensor, nil when absent.
    public func shape(of name: String) -> [Int]? {
        stored(name)?.shape
    }

    /// The stored description of `name` (prefix optional), nil when absent.
    public func stored(_ name: String) -> StoredTensor? {
        guard let stored = resolve(name) else { return nil }
        return fileOfTensor[stored]?.tensors[stored]
    }

    // MARK: Reading

    /// Reads one tensor as F32, checking its shape.
    public func tensor(_ name: String, shape: [Int]) throws -> FloatTensor {
        let reader = reader()
        let tensor = reader.tensor(name, shape: shape)
        try reader.finish()
        return tensor
    }

    /// A reader that records every missing or misshapen tensor; `finish()` throws them all at once.
    public func reader() -> CheckpointReader { CheckpointReader(checkpoint: self) }

    fileprivate func elements(stored name: String) throws -> TensorElements {
        try fileOfTensor[name]!.elements(name)
    }
}

// MARK: - Collecting reader

/// Reads many tensors and reports all problems together: call `tensor` for each, then `finish()`.
/// Until `finish()` succeeds, tensors returned for missing or misshapen names are empty placeholders.
public final class CheckpointReader {
    private let checkpoint: Checkpoint
    private var missing: [String] = []
    private var mismatches: [ShapeMismatch] = []
    private var firstReadError: EngineError?

    init(checkpoint: Checkpoint) { self.checkpoint = checkpoint }

    /// The tensor `name` (prefix `transformer.` optional) as F32 with exactly `shape`.
    public func tensor(_ name: String, shape: [Int]) -> FloatTensor {
        read(name, shape: shape, placeholder: Self.placeholder) { $0.floatTensor() }
    }

    /// The elements of tensor `name` with exactly `shape` where they lie in the file, in the stored dtype
    /// (for repacking into a weight matrix without a float32 copy).
    func elements(_ name: String, shape: [Int]) -> TensorElements {
        read(name, shape: shape, placeholder: Self.placeholder.elements) { $0 }
    }

    private static let placeholder = FloatTensor(shape: [0], values: [])

    private func read<Result>(_ name: String, shape: [Int], placeholder: Result, _ body: (TensorElements) -> Result) -> Result {
        guard let stored = checkpoint.resolve(name) else { missing.append(name); return placeholder }
        let actual = checkpoint.shape(of: stored) ?? []
        guard actual == shape else {
            mismatches.append(ShapeMismatch(tensor: stored, expected: shape, actual: actual))
            return placeholder
        }
        do { return body(try checkpoint.elements(stored: stored)) } catch let error as EngineError {
            if firstReadError == nil { firstReadError = error }
        } catch {
            if firstReadError == nil { firstReadError = .unreadableFile(path: checkpoint.directory.path, reason: "\(error)") }
        }
        return placeholder
    }

    /// The tensor if the checkpoint has it (checked like `tensor`), nil otherwise.
    public func optionalTensor(_ name: String, shape: [Int]) -> FloatTensor? {
        checkpoint.contains(name) ? tensor(name, shape: shape) : nil
    }

    /// Throws `missingTensors` (all names), else `wrongShapes` (all), else the first read error.
    public func finish() throws {
        let directory = checkpoint.directory.path
        if !missing.isEmpty { throw EngineError.missingTensors(directory: directory, names: missing) }
        if !mismatches.isEmpty { throw EngineError.wrongShapes(directory: directory, mismatches: mismatches) }
        if let firstReadError { throw firstReadError }
    }
}
