import Foundation

// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
// `{"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {...}}`,
// then the data section; offsets are relative to the data section. Parsed here and memory-mapped; tensors
// are read in place (TensorElements.swift).

/// A safetensors file: its validated header and the mapped bytes.
public final class SafeTensorsFile: TensorFile, @unchecked Sendable {
    public let path: String
    public let tensors: [String: StoredTensor]
    let file: MappedFile
    /// Offset of the data section within the file.
    let dataStart: Int

    /// The largest header accepted (the format's own limit is 100 MB).
    static let maximumHeaderLength: UInt64 = 100_000_000

    public convenience init(path: String) throws { try self.init(file: MappedFile(path: path)) }

    init(file: MappedFile) throws {
        self.file = file
        let path = file.path
        self.path = path
        guard file.size >= 8 else { throw EngineError.truncatedFile(path: path, size: file.size) }
        let headerLength = UInt64(littleEndian: file.base.loadUnaligned(as: UInt64.self))
        guard headerLength <= UInt64(file.size - 8) else {
            throw EngineError.headerBeyondFile(path: path, headerLength: headerLength, fileSize: file.size)
        }
        guard headerLength <= Self.maximumHeaderLength else {
            throw EngineError.malformedHeader(path: path, reason: "header length \(headerLength) exceeds 100 MB")
        }
        dataStart = 8 + Int(headerLength)
        let headerBytes = Data(bytes: file.base + 8, count: Int(headerLength))
        tensors = try Self.parseHeader(headerBytes, path: path, data: dataStart..<file.size)
    }

    public func elements(_ name: String) throws -> TensorElements {
        guard let tensor = tensors[name] else { throw EngineError.missingTensors(directory: path, names: [name]) }
        return try TensorElements(tensor, in: file)
    }

    private static func parseHeader(_ bytes: Data, path: String, data: Range<Int>) throws -> [String: StoredTensor] {
        func malformed(_ reason: String) -> EngineError { .malformedHeader(path: path, reason: reason) }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: bytes) } catch {
            throw malformed("not valid JSON (\(error.localizedDescription))")
        }
        guard let entries = object as? [String: Any] else { throw malformed("the header is not a JSON object") }
        var result: [String: StoredTensor] = [:]
        for (name, value) in entries where name != "__metadata__" {
            guard let entry = value as? [String: Any] else { throw malformed("entry \(name) is not an object") }
            guard let dtypeName = entry["dtype"] as? String else { throw malformed("tensor \(name) has no dtype") }
            guard let dtype = TensorDType(rawValue: dtypeName) else {
                throw malformed("tensor \(name) has unknown dtype \(dtypeName)")
            }
            guard let shape = integers(entry["shape"]), shape.allSatisfy({ $0 >= 0 }) else {
                throw malformed("tensor \(name) has no valid shape")
            }
            guard let offsets = integers(entry["data_offsets"]), offsets.count == 2 else {
                throw malformed("tensor \(name) has no valid data_offsets")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, end >= begin, end <= data.count else {
                throw EngineError.tensorOutOfBounds(path: path, tensor: name, begin: begin, end: end, dataSize: data.count)
            }
            // Overflow-checked: a hostile shape must not wrap around to the right byte count.
            var bytes = dtype.byteSize
            var overflow = false
            for dimension in shape where !overflow { (bytes, overflow) = bytes.multipliedReportingOverflow(by: dimension) }
            guard !overflow, bytes == end - begin else {
                throw EngineError.tensorSizeMismatch(path: path, tensor: name, shape: shape, dtype: dtypeName, byteCount: end - begin)
            }
            result[name] = try StoredTensor.validated(
                name: name, dtype: dtype, shape: shape, strides: StoredTensor.contiguousStrides(shape), offset: 0,
                region: (data.lowerBound + begin)..<(data.lowerBound + end), path: path)
        }
        return result
    }

    /// JSON numbers as Ints (JSONSerialization gives NSNumber); nil unless all are non-fractional.
    private static func integers(_ value: Any?) -> [Int]? {
        guard let numbers = value as? [Any] else { return nil }
        var result: [Int] = []
        for number in numbers {
            guard let number = number as? NSNumber, let exact = Int(exactly: number.doubleValue) else { return nil }
            result.append(exact)
        }
        return result
    }
}
