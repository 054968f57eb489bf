import Foundation

// Every checkpoint format (safetensors, PyTorch's zip archive) is parsed into the same description:
// where each tensor's elements lie in a memory-mapped file, validated against the file once, at open.
// Reading, conversion to F32 and the bounds rules are then one piece of code for every format.

// MARK: - Element types

/// Element types a checkpoint may store. Only F32, F16 and BF16 can be read as Float; the others (old
/// checkpoints carry BOOL/U8 attention-mask buffers) are parsed, validated and skipped.
public enum TensorDType: String, Sendable, CaseIterable {
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

    public var isFloatReadable: Bool { self == .f32 || self == .f16 || self == .bf16 }
}

// MARK: - One stored tensor

/// One tensor of a checkpoint file: its element type, shape, element strides and the byte offset of
/// its first element in the file. Only made by `validated`, so every element lies inside the file.
public struct StoredTensor: Sendable, Equatable {
    public let name: String
    public let dtype: TensorDType
    public let shape: [Int]
    /// Distance between neighbours along each dimension, in elements (row-major contiguous for safetensors).
    public let strides: [Int]
    /// Offset of element [0, 0, ...] from the start of the file.
    public let byteOffset: Int
    public let elementCount: Int

    /// Strides of a row-major contiguous tensor of `shape`.
    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var step = 1
        for axis in shape.indices.reversed() { strides[axis] = step; step = step &* max(shape[axis], 1) }
        return strides
    }

    /// True when the elements are packed row-major without gaps (dimensions of size 1 may have any stride).
    public var isContiguous: Bool {
        let expected = Self.contiguousStrides(shape)
        return shape.indices.allSatisfy { shape[$0] <= 1 || strides[$0] == expected[$0] }
    }

    /// Bytes from the first element to the end of the last one (for a contiguous tensor, all its bytes).
    var byteSpan: Int {
        guard elementCount > 0 else { return 0 }
        return (zip(shape, strides).reduce(0) { $0 + ($1.0 - 1) * $1.1 } + 1) * dtype.byteSize
    }

    /// Checks that every element of a tensor starting `offset` elements into `region` (a byte range of the
    /// file) lies inside that region, with overflow-checked arithmetic: a hostile shape, stride or offset
    /// must not wrap around to a plausible value.
    static func validated(name: String, dtype: TensorDType, shape: [Int], strides: [Int], offset: Int,
                          region: Range<Int>, path: String) throws -> StoredTensor {
        func outOfBounds(_ begin: Int, _ end: Int) -> EngineError {
            .tensorOutOfBounds(path: path, tensor: name, begin: begin, end: end, dataSize: region.count)
        }
        guard shape.count == strides.count, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }), offset >= 0 else {
            throw EngineError.malformedTensor(path: path, tensor: name,
                                              reason: "shape \(shape), strides \(strides), offset \(offset) are not a valid layout")
        }
        var count = 1
        var lastElement = 0  // index of the farthest element from the first
        var overflow = false
        for axis in shape.indices where !overflow {
            (count, overflow) = count.multipliedReportingOverflow(by: shape[axis])
            if overflow || shape[axis] == 0 { continue }
            let (reach, o1) = (shape[axis] - 1).multipliedReportingOverflow(by: strides[axis])
            let (sum, o2) = lastElement.addingReportingOverflow(reach)
            overflow = o1 || o2
            lastElement = sum
        }
        let size = dtype.byteSize
        let (beginBytes, o1) = offset.multipliedReportingOverflow(by: size)
        let (endElement, o2) = offset.addingReportingOverflow(lastElement + (count == 0 ? 0 : 1))
        let (endBytes, o3) = endElement.multipliedReportingOverflow(by: size)
        guard !overflow, !o1, !o2, !o3 else {
            throw EngineError.malformedTensor(path: path, tensor: name, reason: "shape \(shape) with strides \(strides) overflows")
        }
        guard endBytes <= region.count else { throw outOfBounds(beginBytes, endBytes) }
        // Zero or overlapping strides could make a few stored bytes stand for billions of elements, which
        // reading as F32 would then allocate; no state dict needs more elements than its storage holds.
        guard count <= region.count / size else {
            throw EngineError.malformedTensor(path: path, tensor: name, reason:
                "shape \(shape) with strides \(strides) has \(count) elements, more than its \(region.count)-byte storage holds")
        }
        return StoredTensor(name: name, dtype: dtype, shape: shape, strides: strides,
                            byteOffset: region.lowerBound + beginBytes, elementCount: count)
    }
}

// MARK: - Tensor files

/// A checkpoint file of named tensors, validated when opened; `elements` gives one where it lies in the
/// mapped file, `floatTensor` as F32.
public protocol TensorFile: AnyObject, Sendable {
    var path: String { get }
    /// Every tensor in the file (including ones the model does not use), by name as stored.
    var tensors: [String: StoredTensor] { get }
    func elements(_ name: String) throws -> TensorElements
}

extension TensorFile {
    public func floatTensor(_ name: String) throws -> FloatTensor { try elements(name).floatTensor() }
}

/// Opens `path` as the format its first bytes say: a zip archive is PyTorch's `torch.save` format; a file
/// named like a PyTorch checkpoint (.bin, .pt, .pth) that is not a zip archive is refused (the legacy
/// pre-1.6 format gets how to convert); anything else is safetensors (whose first 8 bytes are a length).
public func openTensorFile(path: String) throws -> any TensorFile {
    let file = try MappedFile(path: path)
    let magic = file.size >= 4 ? Array(UnsafeRawBufferPointer(start: file.base, count: 4)) : []
    if magic == [0x50, 0x4B, 0x03, 0x04] || magic == [0x50, 0x4B, 0x05, 0x06] { return try PyTorchFile(file: file) }
    if [".bin", ".pt", ".pth"].contains(where: path.hasSuffix) {
        // Legacy files are a sequence of pickles, the first one a magic number (protocol 2 opcode first).
        let reason = file.size > 0 && file.base.load(as: UInt8.self) == 0x80 ? PyTorchFile.legacyFormatAdvice
            : "neither a torch.save zip archive nor a legacy PyTorch pickle (\(file.size) bytes; truncated or corrupt?)"
        throw EngineError.unsupportedFormat(path: path, reason: reason)
    }
    return try SafeTensorsFile(file: file)
}

