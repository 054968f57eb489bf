import Foundation

// A small safetensors reader for task-head tensors: a head is a few hundred floats, so it reads the named
// tensors out of a file (memory-mapped) and converts them to Float, leaving the body to the engine's loader.
// Format: 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then data.

/// One tensor read from a safetensors file, converted to Float32, row-major.
struct HeadTensor {
    var shape: [Int]
    var values: [Float]
}

enum HeadSafetensors {
    private struct Entry: Decodable {
        var dtype: String
        var shape: [Int]
        var data_offsets: [Int]
    }

    /// The tensor names in `url` (without reading any data).
    static func tensorNames(in url: URL) throws -> [String] {
        let (_, header, _) = try parseHeader(url)
        return header.keys.filter { $0 != "__metadata__" }.sorted()
    }

    /// Reads the tensors whose names are in `names` (those present; absent names are simply not returned).
    static func read(_ names: Set<String>, from url: URL) throws -> [String: HeadTensor] {
        let (data, header, dataStart) = try parseHeader(url)
        var result: [String: HeadTensor] = [:]
        for name in names {
            guard let raw = header[name] else { continue }
            guard let entry = try? JSONDecoder().decode(Entry.self, from: JSONSerialization.data(withJSONObject: raw)),
                entry.data_offsets.count == 2
            else { throw HeadsError.malformedFile(path: url.path, reason: "bad header entry for \(name)") }
            let count = entry.shape.reduce(1, *)
            let begin = dataStart + entry.data_offsets[0]
            let end = dataStart + entry.data_offsets[1]
            let width: Int
            switch entry.dtype {
            case "F32": width = 4
            case "F16", "BF16": width = 2
            default: throw HeadsError.unsupportedDType(tensor: name, dtype: entry.dtype)
            }
            guard entry.shape.allSatisfy({ $0 >= 0 }), begin <= end, end <= data.count, end - begin == count * width
            else { throw HeadsError.malformedFile(path: url.path, reason: "data of \(name) out of bounds") }
            let values = data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) -> [Float] in
                let bytes = UnsafeRawBufferPointer(rebasing: buffer[begin..<end])
                return (0..<count).map { i in
                    switch entry.dtype {
                    case "F32": return Float(bitPattern: bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian)
                    case "F16": return Float(Float16(bitPattern: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian))
                    default:  // BF16: the top half of a Float32
                        let bits = bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian
                        return Float(bitPattern: UInt32(bits) << 16)
                    }
                }
            }
            result[name] = HeadTensor(shape: entry.shape, values: values)
        }
        return result
    }

    private static func parseHeader(_ url: URL) throws -> (Data, [String: Any], Int) {
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw HeadsError.fileNotReadable(path: url.path)
        }
        guard data.count >= 8 else { throw HeadsError.malformedFile(path: url.path, reason: "shorter than 8 bytes") }
        let length = data.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard length > 0, length <= data.count - 8 else {
            throw HeadsError.malformedFile(path: url.path, reason: "header length \(length) exceeds the file")
        }
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as? [String: Any]
        else { throw HeadsError.malformedFile(path: url.path, reason: "header is not a JSON object") }
        return (data, header, 8 + length)
    }
}
