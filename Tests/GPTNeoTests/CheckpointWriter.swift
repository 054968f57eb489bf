import Foundation
@testable import GPTNeo

// MARK: - Writing (possibly broken) checkpoints for tests

/// One tensor to write: raw little-endian bytes with a dtype name and shape as they go in the header.
struct RawTensor {
    var name: String
    var dtype: String
    var shape: [Int]
    var bytes: [UInt8]

    static func f32(_ name: String, shape: [Int], values: [Float]) -> RawTensor {
        RawTensor(name: name, dtype: "F32", shape: shape, bytes: values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) })
    }
    static func f16(_ name: String, shape: [Int], values: [Float]) -> RawTensor {
        RawTensor(name: name, dtype: "F16", shape: shape, bytes: values.flatMap { withUnsafeBytes(of: Float16($0).bitPattern.littleEndian, Array.init) })
    }
    static func bf16(_ name: String, shape: [Int], values: [Float]) -> RawTensor {
        RawTensor(name: name, dtype: "BF16", shape: shape,
                  bytes: values.flatMap { withUnsafeBytes(of: UInt16($0.bitPattern >> 16).littleEndian, Array.init) })
    }
}

/// The bytes of a safetensors file. `headerPadding` spaces follow the JSON (HF pads to 8 bytes);
/// `offsetsOverride` replaces a tensor's data_offsets in the header; `declaredHeaderLength` lies about it.
func safetensorsBytes(_ tensors: [RawTensor], headerPadding: Int? = nil, offsetsOverride: [String: [Int]] = [:],
                      declaredHeaderLength: UInt64? = nil) -> [UInt8] {
    var entries: [String] = []
    var data: [UInt8] = []
    for tensor in tensors {
        let offsets = offsetsOverride[tensor.name] ?? [data.count, data.count + tensor.bytes.count]
        entries.append("\"\(tensor.name)\":{\"dtype\":\"\(tensor.dtype)\",\"shape\":\(tensor.shape),\"data_offsets\":\(offsets)}")
        data += tensor.bytes
    }
    var header = Array(("{\"__metadata__\":{\"format\":\"pt\"}," + entries.joined(separator: ",") + "}").utf8)
    let padding = headerPadding ?? ((8 - header.count % 8) % 8)
    header += [UInt8](repeating: 0x20, count: padding)
    let length = declaredHeaderLength ?? UInt64(header.count)
    return withUnsafeBytes(of: length.littleEndian, Array.init) + header + data
}

/// A temporary checkpoint directory, removed by `remove()`.
struct TemporaryCheckpoint {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("gptneo-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: directory.appendingPathComponent(name))
    }

    func writeConfig(_ json: String) throws { try write("config.json", Array(json.utf8)) }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// The tiny fixture checkpoint's config.json text and its tensors as F32 values, for rewriting.
enum TinyCheckpointSource {
    static let configText: String = try! String(contentsOf: tinyCheckpoint.appendingPathComponent("config.json"), encoding: .utf8)

    /// Every stored tensor (name as stored, shape, F32 values), sorted by name.
    static let tensors: [(name: String, shape: [Int], values: [Float])] = {
        let file = try! SafeTensorsFile(path: tinyCheckpoint.appendingPathComponent("model.safetensors").path)
        return file.tensors.keys.sorted().map { name in
            let tensor = try! file.floatTensor(name)
            return (name, tensor.shape, tensor.array)
        }
    }()

    /// The tensors encoded with `encode` (default F16, as in the fixture), after `transform` on names.
    static func rawTensors(rename: (String) -> String? = { $0 },
                           encode: (String, [Int], [Float]) -> RawTensor = { .f16($0, shape: $1, values: $2) }) -> [RawTensor] {
        tensors.compactMap { tensor in rename(tensor.name).map { encode($0, tensor.shape, tensor.values) } }
    }

    /// config.json with `key`'s value replaced (value given as JSON text).
    static func config(replacing key: String, with value: String) -> String {
        var object = try! JSONSerialization.jsonObject(with: Data(configText.utf8)) as! [String: Any]
        object[key] = try! JSONSerialization.jsonObject(with: Data(value.utf8), options: .fragmentsAllowed)
        return String(data: try! JSONSerialization.data(withJSONObject: object), encoding: .utf8)!
    }
}
