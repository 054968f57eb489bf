import Foundation

// PyTorch's checkpoint format since 1.6 (`torch.save`): a zip archive with one top folder (any name) holding
// `data.pkl` (the pickled state dict, whose tensors refer to storages by persistent id), `data/<key>` (each
// storage's raw little-endian bytes, uncompressed), `byteorder` and `version`. The pickle is interpreted by
// the restricted `Unpickler`, never executed; tensors point straight into the mapped archive.

/// A `pytorch_model.bin` (or any `torch.save`d state dict of tensors).
public final class PyTorchFile: TensorFile, @unchecked Sendable {
    public let path: String
    public let tensors: [String: StoredTensor]
    let file: MappedFile

    /// The largest `data.pkl` accepted (a state dict's pickle is ~100 bytes per tensor).
    static let maximumPickleBytes = 256 << 20

    static let legacyFormatAdvice = "this is PyTorch's legacy (pre-1.6, non-zip) checkpoint format, which is not read; "
        + "re-save it once with a current torch: python -c \"import torch; torch.save(torch.load('pytorch_model.bin', weights_only=True), 'pytorch_model.bin')\" "
        + "(or convert the checkpoint to safetensors with transformers' save_pretrained)"

    public convenience init(path: String) throws { try self.init(file: MappedFile(path: path)) }

    init(file: MappedFile) throws {
        self.file = file
        path = file.path
        tensors = try Self.parse(UnsafeRawBufferPointer(start: file.base, count: file.size), path: file.path)
    }

    /// The validated tensors of an archive held in `bytes` (byte offsets relative to its start); `path`
    /// names it in errors. Public for the fuzz target.
    public static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws -> [String: StoredTensor] {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw EngineError.malformedArchive(path: path, reason: "empty file")
        }
        let archive = try ZipArchive(base: base, size: bytes.count, path: path)
        func malformed(_ reason: String) -> EngineError { .malformedArchive(path: path, reason: reason) }

        let pickles = archive.entries.keys.filter { $0.hasSuffix("/data.pkl") && $0.split(separator: "/").count == 2 }
        guard pickles.count == 1, let pickleName = pickles.first else {
            throw malformed(pickles.isEmpty ? "no <folder>/data.pkl entry: not a torch.save archive"
                                            : "several data.pkl entries: \(pickles.sorted())")
        }
        let folder = String(pickleName.dropLast("data.pkl".count))
        if let byteorder = archive.entries[folder + "byteorder"] {
            let text = String(decoding: UnsafeRawBufferPointer(start: base + byteorder.data.lowerBound, count: byteorder.data.count), as: UTF8.self)
            guard text == "little" else { throw malformed("byteorder is \"\(text.prefix(16))\"; only little-endian archives are read") }
        }
        let pickle = try Self.storedData(archive, pickleName, path: path)
        guard pickle.count <= Self.maximumPickleBytes else { throw malformed("data.pkl is \(pickle.count) bytes, over the limit of \(Self.maximumPickleBytes)") }

        return try tensors(pickle: UnsafeRawBufferPointer(start: base + pickle.lowerBound, count: pickle.count), path: path) { key in
            let entryName = folder + "data/" + key
            guard archive.entries[entryName] != nil else { return nil }
            return (entryName, try Self.storedData(archive, entryName, path: path))
        }
    }

    /// The validated tensors of a state dict's pickle; `storage` gives a persistent id's key the name and
    /// byte range of its data (nil when there is no such storage). Public for the fuzz target.
    public static func tensors(pickle: UnsafeRawBufferPointer, path: String,
                               storage: (String) throws -> (name: String, bytes: Range<Int>)?) throws -> [String: StoredTensor] {
        let pickled = try Unpickler.load(pickle, path: path) { root in try Self.stateDict(root, path: path) }
        var tensors: [String: StoredTensor] = [:]
        for (name, tensor) in pickled {
            let declared = tensor.storage
            guard let (entryName, region) = try storage(declared.key) else {
                throw EngineError.malformedTensor(path: path, tensor: name, reason: "its storage data/\(declared.key) is not in the archive")
            }
            let (size, overflow) = declared.elementCount.multipliedReportingOverflow(by: declared.dtype.byteSize)
            guard !overflow, size <= region.count else {
                throw EngineError.malformedTensor(path: path, tensor: name, reason:
                    "storage \(entryName) declares \(declared.elementCount) \(declared.dtype.rawValue) elements but holds \(region.count) bytes")
            }
            tensors[name] = try StoredTensor.validated(name: name, dtype: declared.dtype, shape: tensor.shape, strides: tensor.strides,
                                                       offset: tensor.offset, region: region.lowerBound..<(region.lowerBound + size), path: path)
        }
        return tensors
    }

    public func elements(_ name: String) throws -> TensorElements {
        guard let tensor = tensors[name] else { throw EngineError.missingTensors(directory: path, names: [name]) }
        return try TensorElements(tensor, in: file)
    }

    /// The byte range of an uncompressed entry.
    private static func storedData(_ archive: ZipArchive, _ name: String, path: String) throws -> Range<Int> {
        guard let entry = archive.entries[name] else { throw EngineError.malformedArchive(path: path, reason: "no entry \(name)") }
        guard entry.method == 0 else {
            throw EngineError.malformedArchive(path: path, reason: "entry \(name) is compressed (method \(entry.method)); torch.save stores entries uncompressed")
        }
        return entry.data
    }

    /// The tensors of the pickled state dict by name. Entries that are not tensors are skipped, as
    /// transformers skips unexpected keys; a key given twice is an error.
    private static func stateDict(_ root: PickleValue, path: String) throws -> [String: PickledTensor] {
        guard case .dict(let dict) = root else {
            throw EngineError.malformedPickle(path: path, offset: 0, reason: "the pickle holds a \(root.kind), not a state dict")
        }
        var result: [String: PickledTensor] = [:]
        var keys: Set<String> = []
        for index in stride(from: 0, to: dict.items.count, by: 2) {
            guard case .string(let key) = dict.items[index] else {
                throw EngineError.malformedPickle(path: path, offset: 0, reason: "a state dict key is a \(dict.items[index].kind), not a str")
            }
            guard keys.insert(key).inserted else {
                throw EngineError.malformedPickle(path: path, offset: 0, reason: "key \(key) appears twice in the state dict")
            }
            if case .tensor(let tensor) = dict.items[index + 1] { result[key] = tensor }
        }
        return result
    }
}
