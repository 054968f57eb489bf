import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
// `{"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {...}}`,
// then the data section; offsets are relative to the data section. Parsed here, memory-mapped, never
// copied except to convert F16/BF16 to F32.

// MARK: - Tensor descriptions

/// Element types of safetensors. Only F32, F16 and BF16 can be read as Float; the others (old
/// checkpoints carry BOOL/U8 attention-mask buffers) are parsed, validated and skipped.
public enum SafeTensorsDType: String, Sendable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8", bool = "BOOL"
    case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"

    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool, .f8e4m3, .f8e5m2: return 1
        }
    }
}

/// One tensor's entry in a safetensors header, validated against the file.
public struct SafeTensorInfo: Sendable, Equatable {
    public var name: String
    public var dtype: SafeTensorsDType
    public var shape: [Int]
    /// Byte range within the data section.
    public var dataOffsets: Range<Int>
    public var elementCount: Int { shape.reduce(1, *) }
}

// MARK: - A memory-mapped file

/// A whole file mapped read-only; unmapped when the last reference goes away.
final class MappedFile: @unchecked Sendable {
    let path: String
    let base: UnsafeRawPointer
    let size: Int

    init(path: String) throws {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else { throw EngineError.fileMissing(path: path) }
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw EngineError.unreadableFile(path: path, reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw EngineError.unreadableFile(path: path, reason: String(cString: strerror(errno)))
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw EngineError.unreadableFile(path: path, reason: "not a regular file") }
        size = Int(status.st_size)
        // mmap refuses empty files; such a file is simply truncated (checked by the parser).
        guard size > 0 else { base = UnsafeRawPointer(bitPattern: 1)!; return }
        let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw EngineError.unreadableFile(path: path, reason: "mmap: " + String(cString: strerror(errno)))
        }
        base = UnsafeRawPointer(mapped)
    }

    deinit { if size > 0 { munmap(UnsafeMutableRawPointer(mutating: base), size) } }
}

// MARK: - The parser

/// A safetensors file: its validated header and the mapped bytes.
public final class SafeTensorsFile: @unchecked Sendable {
    public let path: String
    /// Every tensor in the file (including ones the model does not use), by name.
    public let tensors: [String: SafeTensorInfo]
    let file: MappedFile
    /// Offset of the data section within the file.
    let dataStart: Int

    /// The largest header accepted (the format's own limit is 100 MB).
    static let maximumHeaderLength: UInt64 = 100_000_000

    public init(path: String) throws {
        file = try MappedFile(path: path)
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
        tensors = try Self.parseHeader(headerBytes, path: path, dataSize: file.size - dataStart)
    }

    private static func parseHeader(_ bytes: Data, path: String, dataSize: Int) throws -> [String: SafeTensorInfo] {
        func malformed(_ reason: String) -> EngineError { .malformedHeader(path: path, reason: reason) }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: bytes) } catch {
            throw malformed("not valid JSON (\(error.localizedDescription))")
        }
        guard let entries = object as? [String: Any] else { throw malformed("the header is not a JSON object") }
        var result: [String: SafeTensorInfo] = [:]
        for (name, value) in entries where name != "__metadata__" {
            guard let entry = value as? [String: Any] else { throw malformed("entry \(name) is not an object") }
            guard let dtypeName = entry["dtype"] as? String else { throw malformed("tensor \(name) has no dtype") }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
                throw malformed("tensor \(name) has unknown dtype \(dtypeName)")
            }
            guard let shape = integers(entry["shape"]), shape.allSatisfy({ $0 >= 0 }) else {
                throw malformed("tensor \(name) has no valid shape")
            }
            guard let offsets = integers(entry["data_offsets"]), offsets.count == 2 else {
                throw malformed("tensor \(name) has no valid data_offsets")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, end >= begin, end <= dataSize else {
                throw EngineError.tensorOutOfBounds(path: path, tensor: name, begin: begin, end: end, dataSize: dataSize)
            }
            // Overflow-checked: a hostile shape must not wrap around to the right byte count.
            var bytes = dtype.byteSize
            var overflow = false
            for dimension in shape where !overflow { (bytes, overflow) = bytes.multipliedReportingOverflow(by: dimension) }
            guard !overflow, bytes == end - begin else {
                throw EngineError.tensorSizeMismatch(path: path, tensor: name, shape: shape, dtype: dtypeName, byteCount: end - begin)
            }
            result[name] = SafeTensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end)
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

    // MARK: Reading

    /// The tensor as F32. F32 data that is 4-byte aligned in the mapping is used in place (no copy);
    /// F16, BF16 and unaligned F32 are converted into a new buffer.
    public func floatTensor(_ name: String) throws -> FloatTensor {
        guard let info = tensors[name] else { throw EngineError.missingTensors(directory: path, names: [name]) }
        let source = file.base + dataStart + info.dataOffsets.lowerBound
        let count = info.elementCount
        switch info.dtype {
        case .f32 where Int(bitPattern: source) % MemoryLayout<Float>.alignment == 0:
            let floats = source.assumingMemoryBound(to: Float.self)
            return FloatTensor(shape: info.shape, borrowing: UnsafeBufferPointer(start: floats, count: count), owner: file)
        case .f32:
            return FloatTensor(shape: info.shape) { out in
                for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
            }
        case .f16:
            return FloatTensor(shape: info.shape) { out in
                convertInParallel(count) { range in
                    for i in range {
                        let bits = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                        out[i] = Float(Float16(bitPattern: bits))
                    }
                }
            }
        case .bf16:
            // bfloat16 is the top half of a float32.
            return FloatTensor(shape: info.shape) { out in
                convertInParallel(count) { range in
                    for i in range {
                        let bits = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                        out[i] = Float(bitPattern: UInt32(bits) << 16)
                    }
                }
            }
        default:
            throw EngineError.unsupportedDType(path: path, tensor: name, dtype: info.dtype.rawValue)
        }
    }
}

/// Runs `convert` over 0..<count split across the cores (a 2.7B-parameter F16 checkpoint is 2.7 G
/// conversions at load).
private func convertInParallel(_ count: Int, _ convert: (Range<Int>) -> Void) {
    let parts = count < (1 << 20) ? 1 : ProcessInfo.processInfo.activeProcessorCount
    parallelFor(parts) { part in convert((count * part / parts)..<(count * (part + 1) / parts)) }
}

// MARK: - Float tensors

/// An immutable row-major Float tensor, either borrowed from a mapped file (kept alive by `owner`)
/// or owning a converted copy.
public final class FloatTensor: @unchecked Sendable {
    public let shape: [Int]
    /// The elements; valid as long as this object lives.
    public let buffer: UnsafeBufferPointer<Float>
    private let owner: AnyObject?
    private let ownsBuffer: Bool

    init(shape: [Int], borrowing buffer: UnsafeBufferPointer<Float>, owner: AnyObject) {
        self.shape = shape; self.buffer = buffer; self.owner = owner; ownsBuffer = false
    }

    /// Allocates `shape`'s element count and lets `fill` write every element.
    public init(shape: [Int], fill: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        let count = shape.reduce(1, *)
        let storage = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(count, 1))
        storage.initialize(repeating: 0)
        try fill(UnsafeMutableBufferPointer(rebasing: storage[0..<count]))
        self.shape = shape; buffer = UnsafeBufferPointer(rebasing: storage[0..<count]); owner = nil; ownsBuffer = true
    }

    /// A copy of `values` (row-major) with `shape`.
    public convenience init(shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "values do not match the shape")
        self.init(shape: shape) { out in _ = out.initialize(from: values) }
    }

    deinit { if ownsBuffer { UnsafeMutableRawPointer(mutating: buffer.baseAddress!).deallocate() } }

    public var pointer: UnsafePointer<Float> { buffer.baseAddress! }
    public var count: Int { buffer.count }
    /// The elements as an array (a copy).
    public var array: [Float] { Array(buffer) }
}
