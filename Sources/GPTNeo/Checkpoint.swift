import Foundation

// MARK: - Checkpoint directory

/// The weights of a Hugging Face checkpoint directory: `model.safetensors`, or shards listed in
/// `model.safetensors.index.json`. Names resolve with or without the `transformer.` prefix, so a
/// `GPTNeoModel` checkpoint and a `GPTNeoForCausalLM` one read the same.
///
/// Reusable by task heads: `reader()` collects every missing or misshapen tensor before failing,
/// so one error lists all problems.
public final class Checkpoint: @unchecked Sendable {
    public let directory: URL
    /// Every tensor name in every file, as stored.
    public let tensorNames: Set<String>
    private let fileOfTensor: [String: SafeTensorsFile]

    /// Opens (maps and validates the headers of) the safetensors files of `directory`.
    public init(directory: URL) throws {
        self.directory = directory
        let single = directory.appendingPathComponent("model.safetensors")
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        var fileOfTensor: [String: SafeTensorsFile] = [:]
        if FileManager.default.fileExists(atPath: single.path) {
            let file = try SafeTensorsFile(path: single.path)
            for name in file.tensors.keys { fileOfTensor[name] = file }
        } else if FileManager.default.fileExists(atPath: index.path) {
            let shards = try Self.readIndex(index)
            var opened: [String: SafeTensorsFile] = [:]
            for (name, shard) in shards.sorted(by: { $0.key < $1.key }) {
                let file: SafeTensorsFile
                if let existing = opened[shard] { file = existing } else {
                    file = try SafeTensorsFile(path: directory.appendingPathComponent(shard).path)
                    opened[shard] = file
                }
                // The index may list a tensor its shard lacks; it is then reported missing when asked for.
                if file.tensors[name] != nil { fileOfTensor[name] = file }
            }
        } else if let pickle = ["pytorch_model.bin", "pytorch_model.bin.index.json"]
                    .map({ directory.appendingPathComponent($0) })
                    .first(where: { FileManager.default.fileExists(atPath: $0.path) }) {
            throw EngineError.unsupportedFormat(path: pickle.path, reason:
                "only safetensors weights are read (model.safetensors or its shards); convert with transformers: "
                + "from_pretrained(...).save_pretrained(dir, safe_serialization=True)")
        } else {
            throw EngineError.fileMissing(path: single.path)
        }
        self.fileOfTensor = fileOfTensor
        tensorNames = Set(fileOfTensor.keys)
    }

    /// `weight_map` of a sharded checkpoint's index: tensor name → shard file name.
    private static func readIndex(_ url: URL) throws -> [String: String] {
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
        guard let stored = resolve(name) else { return nil }
        return fileOfTensor[stored]?.tensors[stored]?.shape
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

    fileprivate func read(stored name: String) throws -> FloatTensor {
        try fileOfTensor[name]!.floatTensor(name)
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
        let placeholder = FloatTensor(shape: [0], values: [])
        guard let stored = checkpoint.resolve(name) else { missing.append(name); return placeholder }
        let actual = checkpoint.shape(of: stored) ?? []
        guard actual == shape else {
            mismatches.append(ShapeMismatch(tensor: stored, expected: shape, actual: actual))
            return placeholder
        }
        do { return try checkpoint.read(stored: stored) } catch let error as EngineError {
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
