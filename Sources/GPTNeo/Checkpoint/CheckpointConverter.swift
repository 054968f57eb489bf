import Foundation

// `gptneo-server convert`: any checkpoint the loader reads (safetensors or pytorch_model.bin, single or
// sharded, F32/F16/BF16) written once as safetensors in the chosen dtype, with the config and tokenizer
// files beside it, so that later starts map the weights instead of interpreting a pickle. Output is
// written to a temporary folder next to the destination and renamed into place at the end, so an
// interrupted conversion never leaves a half-written checkpoint under the destination's name.

/// What can stop a conversion besides an unreadable source (an `EngineError`).
public enum ConversionError: Error, Sendable, Equatable, CustomStringConvertible {
    case destinationExists(path: String)
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case .destinationExists(let path): "\(path) already exists; convert writes a new directory and never overwrites"
        case .cannotWrite(let path, let reason): "\(path): cannot write: \(reason)"
        }
    }
}

public enum CheckpointConverter {
    /// transformers' default `max_shard_size` ("5GB").
    public static let defaultMaxShardBytes = 5_000_000_000
    /// Files copied unchanged when present (config, generation defaults, every tokenizer format).
    static let companionFiles = ["config.json", "generation_config.json", "tokenizer.json", "vocab.json", "merges.txt",
                                 "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"]

    public struct Summary: Sendable {
        public var tensors: Int
        public var bytes: Int
        public var shards: [String]
        public var skipped: [String]
    }

    /// Converts the checkpoint in `source` into `destination` (which must not exist yet). `progress` gets
    /// (bytes written, total bytes) after each tensor.
    public static func convert(from source: URL, to destination: URL, dtype: TensorDType, maxShardBytes: Int = defaultMaxShardBytes,
                               progress: (Int, Int) -> Void = { _, _ in }) throws -> Summary {
        precondition([.f32, .f16, .bf16].contains(dtype), "convert writes F32, F16 or BF16")
        let fm = FileManager.default
        guard !fm.fileExists(atPath: destination.path) else {
            throw ConversionError.destinationExists(path: destination.path)
        }
        let config = try GPTNeoConfig.load(contentsOf: source.appendingPathComponent("config.json"))
        let checkpoint = try Checkpoint(directory: source)

        // Every F32/F16/BF16 tensor as stored, except a tied lm_head (transformers drops it on save too).
        var names: [String] = [], skipped: [String] = []
        for name in checkpoint.tensorNames.sorted() {
            let tied = config.tieWordEmbeddings && name == "lm_head.weight"
            if tied || checkpoint.stored(name)?.dtype.isFloatReadable != true { skipped.append(name) } else { names.append(name) }
        }
        let sizes = names.map { checkpoint.stored($0)!.elementCount * dtype.byteSize }
        let total = sizes.reduce(0, +)
        var shards: [[Int]] = [[]]
        var shardBytes = 0
        for (i, size) in sizes.enumerated() {
            if !shards[shards.count - 1].isEmpty, shardBytes + size > maxShardBytes { shards.append([]); shardBytes = 0 }
            shards[shards.count - 1].append(i)
            shardBytes += size
        }
        let shardNames = shards.count == 1 ? ["model.safetensors"]
            : shards.indices.map { String(format: "model-%05d-of-%05d.safetensors", $0 + 1, shards.count) }

        let staging = destination.deletingLastPathComponent().appendingPathComponent(".\(destination.lastPathComponent).partial-\(UUID().uuidString)")
        do { try fm.createDirectory(at: staging, withIntermediateDirectories: true) } catch {
            throw ConversionError.cannotWrite(path: staging.path, reason: "\(error)")
        }
        var finished = false
        defer { if !finished { try? fm.removeItem(at: staging) } }

        var written = 0
        var weightMap: [String: String] = [:]
        for (shard, members) in shards.enumerated() {
            let tensors = members.map { (name: names[$0], shape: checkpoint.stored(names[$0])!.shape) }
            try SafeTensorsWriter.write(tensors, dtype: dtype, to: staging.appendingPathComponent(shardNames[shard])) { name in
                let tensor = try checkpoint.tensor(name, shape: checkpoint.shape(of: name)!)
                written += tensor.count * dtype.byteSize
                progress(written, total)
                return tensor
            }
            for name in tensors.map(\.name) { weightMap[name] = shardNames[shard] }
        }
        if shards.count > 1 {
            let index: [String: Any] = ["metadata": ["total_size": total], "weight_map": weightMap]
            try JSONSerialization.data(withJSONObject: index, options: [.prettyPrinted, .sortedKeys])
                .write(to: staging.appendingPathComponent("model.safetensors.index.json"))
        }
        do {
            for name in companionFiles where fm.fileExists(atPath: source.appendingPathComponent(name).path) {
                // Read and write rather than copy: in the Hugging Face cache these are symlinks to blobs.
                try Data(contentsOf: source.appendingPathComponent(name)).write(to: staging.appendingPathComponent(name))
            }
            try fm.moveItem(at: staging, to: destination)
        } catch {
            throw ConversionError.cannotWrite(path: destination.path, reason: "\(error)")
        }
        finished = true
        return Summary(tensors: names.count, bytes: total, shards: shardNames, skipped: skipped)
    }
}

// MARK: - Writing safetensors

enum SafeTensorsWriter {
    /// Writes `tensors` (in this order) as one safetensors file in `dtype`; `read` supplies each as F32.
    static func write(_ tensors: [(name: String, shape: [Int])], dtype: TensorDType, to url: URL,
                      read: (String) throws -> FloatTensor) throws {
        var entries: [String] = ["\"__metadata__\":{\"format\":\"pt\"}"]
        var offset = 0
        for tensor in tensors {
            let bytes = tensor.shape.reduce(1, *) * dtype.byteSize
            entries.append("\(jsonString(tensor.name)):{\"dtype\":\"\(dtype.rawValue)\",\"shape\":\(tensor.shape),\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)  // data starts 8-byte aligned
        guard FileManager.default.createFile(atPath: url.path, contents: nil), let handle = FileHandle(forWritingAtPath: url.path) else {
            throw ConversionError.cannotWrite(path: url.path, reason: "cannot create the file")
        }
        defer { try? handle.close() }
        do {
            try handle.write(contentsOf: withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header)
            for tensor in tensors {
                let values = try read(tensor.name)
                try handle.write(contentsOf: encode(values.buffer, as: dtype))
            }
        } catch let error as EngineError {
            throw error
        } catch {
            throw ConversionError.cannotWrite(path: url.path, reason: "\(error)")
        }
    }

    /// Little-endian `dtype` bytes of `values`, rounding to nearest even as torch's `.to(dtype)` does.
    static func encode(_ values: UnsafeBufferPointer<Float>, as dtype: TensorDType) -> Data {
        var data = Data(count: values.count * dtype.byteSize)
        data.withUnsafeMutableBytes { (out: UnsafeMutableRawBufferPointer) in
            for (i, value) in values.enumerated() {
                switch dtype {
                case .f16: out.storeBytes(of: Float16(value).bitPattern.littleEndian, toByteOffset: 2 * i, as: UInt16.self)
                case .bf16: out.storeBytes(of: bfloat16Bits(value).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
                default: out.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self)
                }
            }
        }
        return data
    }

    /// The top half of `value` rounded to nearest even (NaN stays a quiet NaN).
    static func bfloat16Bits(_ value: Float) -> UInt16 {
        if value.isNaN { return 0x7FC0 }
        let bits = value.bitPattern
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
    }

    private static func jsonString(_ text: String) -> String {
        String(data: try! JSONSerialization.data(withJSONObject: text, options: .fragmentsAllowed), encoding: .utf8)!
    }
}
