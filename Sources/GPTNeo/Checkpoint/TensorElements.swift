import CWidening
import Foundation

// A stored tensor's elements where they lie — in the memory-mapped checkpoint, in the stored dtype — so
// that a weight matrix is repacked straight from the file (a 16-bit tensor into 16-bit panels without a
// float32 copy) and the file's pages are dropped from the resident set once read. Widening F16 and BF16
// to F32 is exact; narrowing happens only where the weights are stored (WeightMatrix.swift).

// MARK: - Elements of one tensor

/// One F32, F16 or BF16 tensor's elements in place: in a mapped checkpoint file, or in a `FloatTensor`.
public struct TensorElements: @unchecked Sendable {
    let stored: StoredTensor
    /// Element [0, 0, ...].
    let first: UnsafeRawPointer
    /// Keeps `first` valid.
    private let owner: AnyObject
    /// The mapped file the elements lie in, nil for a `FloatTensor`'s.
    private let mapping: MappedFile?

    /// `tensor` of the mapped `file`; only F32, F16 and BF16 can be read as numbers.
    init(_ tensor: StoredTensor, in file: MappedFile) throws {
        guard tensor.dtype.isFloatReadable else {
            throw EngineError.unsupportedDType(path: file.path, tensor: tensor.name, dtype: tensor.dtype.rawValue)
        }
        stored = tensor; first = file.base + tensor.byteOffset; owner = file; mapping = file
    }

    /// The elements of `tensor` (row-major F32).
    init(_ tensor: FloatTensor) {
        stored = StoredTensor(name: "", dtype: .f32, shape: tensor.shape, strides: StoredTensor.contiguousStrides(tensor.shape),
                              byteOffset: 0, elementCount: tensor.count)
        first = UnsafeRawPointer(tensor.pointer); owner = tensor; mapping = nil
    }

    var shape: [Int] { stored.shape }
    var dtype: TensorDType { stored.dtype }
    var count: Int { stored.elementCount }

    // MARK: Reading

    /// Below this size an F32 tensor is copied rather than used in place: the kernel maps file pages 64 KiB
    /// at a time around each access, so a few KiB of LayerNorm or bias read in place keep up to 64 KiB of
    /// the file resident (about 3 MiB for the 125M model's vectors), where a copy costs its own size.
    static let inPlaceMinimumBytes = 1 << 20

    /// The tensor as F32. Contiguous, 4-byte aligned F32 data of at least `inPlaceMinimumBytes` is used in
    /// place (no copy; only the rows a request reads become resident, as for the position table);
    /// everything else (small, F16, BF16, unaligned or strided) is converted into a new buffer, after which
    /// the file's pages are released.
    func floatTensor() -> FloatTensor {
        let (source, dtype, count) = (first, stored.dtype, stored.elementCount)
        if dtype == .f32, stored.isContiguous, Int(bitPattern: source) % MemoryLayout<Float>.alignment == 0,
           count * MemoryLayout<Float>.size >= Self.inPlaceMinimumBytes {
            let floats = source.assumingMemoryBound(to: Float.self)
            return FloatTensor(shape: shape, borrowing: UnsafeBufferPointer(start: floats, count: count), owner: owner)
        }
        let tensor: FloatTensor
        if stored.isContiguous {
            tensor = FloatTensor(shape: shape) { out in
                convertInParallel(count) { range in
                    widen(dtype, source, from: range.lowerBound, stride: 1, count: range.count, into: out.baseAddress! + range.lowerBound)
                }
            }
        } else {
            tensor = FloatTensor(shape: shape) { out in copyStrided(stored, from: source, into: out) }
        }
        releasePages()
        return tensor
    }

    /// Rows `rows` of a matrix (N, K), widened exactly to floats: out[(n − rows.lowerBound) · K + k] = W[n, k].
    func widenRows(_ rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        precondition(shape.count == 2 && rows.lowerBound >= 0 && rows.upperBound <= shape[0], "rows \(rows) outside shape \(shape)")
        let K = shape[1]
        for (i, n) in rows.enumerated() {
            widen(stored.dtype, first, from: n * stored.strides[0], stride: stored.strides[1], count: K, into: out + i * K)
        }
    }

    /// The stored bits, row-major, when the tensor is stored contiguously as `dtype` (F16 or BF16) and
    /// 2-byte aligned; nil otherwise. Copying these bits is exact where widening and narrowing back is
    /// exact, so a 16-bit tensor kept in its own dtype needs no conversion at all.
    func sixteenBitElements(ifStoredAs dtype: TensorDType) -> UnsafePointer<UInt16>? {
        guard stored.dtype == dtype, dtype.byteSize == 2, stored.isContiguous,
              Int(bitPattern: first) % MemoryLayout<UInt16>.alignment == 0 else { return nil }
        return first.assumingMemoryBound(to: UInt16.self)
    }

    /// The elements, row-major, when the tensor is stored contiguously as F32 and 4-byte aligned; nil
    /// otherwise.
    func float32Elements() -> UnsafePointer<Float>? {
        guard stored.dtype == .f32, stored.isContiguous, Int(bitPattern: first) % MemoryLayout<Float>.alignment == 0 else { return nil }
        return first.assumingMemoryBound(to: Float.self)
    }

    /// Drops the file's pages under these elements from this process's resident set, once they have been
    /// copied into their in-memory form: otherwise the process holds every weight twice (the copy and
    /// the mapped file). Nothing for elements not in a file.
    func releasePages() {
        mapping?.releasePages(stored.byteOffset..<(stored.byteOffset + stored.byteSpan))
    }
}

extension FloatTensor {
    var elements: TensorElements { TensorElements(self) }
}

// MARK: - Conversion

/// Element `element` of F32/F16/BF16 little-endian data at `source`, widened exactly.
@inline(__always)
private func loadFloat(_ dtype: TensorDType, _ source: UnsafeRawPointer, element: Int) -> Float {
    switch dtype {
    case .f16: return Float(Float16(bitPattern: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * element, as: UInt16.self))))
    // bfloat16 is the top half of a float32.
    case .bf16: return Float(bitPattern: UInt32(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * element, as: UInt16.self))) << 16)
    default: return Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * element, as: UInt32.self)))
    }
}

/// out[i] = element `element + i · stride` of `source`, for i in 0..<count (one loop per dtype). Runs of
/// contiguous 16-bit elements are widened eight at a time with the kernels' conversions (F16C's VCVTPH2PS,
/// exact as the scalar one), which Swift's scalar `Float(Float16)` does not compile to.
private func widen(_ dtype: TensorDType, _ source: UnsafeRawPointer, from element: Int, stride: Int, count: Int,
                   into out: UnsafeMutablePointer<Float>) {
    var done = 0
    if stride == 1, dtype == .f16 || dtype == .bf16 {
        let start = source + 2 * element
        while done + 8 <= count {
            let floats = dtype == .f16 ? widenFloat16x8(start + 2 * done) : widenBFloat16x8(start + 2 * done)
            UnsafeMutableRawPointer(out + done).storeBytes(of: floats, as: SIMD8<Float>.self)
            done += 8
        }
    }
    let (element, count, out) = (element + done * stride, count - done, out + done)
    switch dtype {
    case .f16: for i in 0..<count { out[i] = loadFloat(.f16, source, element: element + i * stride) }
    case .bf16: for i in 0..<count { out[i] = loadFloat(.bf16, source, element: element + i * stride) }
    default: for i in 0..<count { out[i] = loadFloat(.f32, source, element: element + i * stride) }
    }
}

/// Gathers a strided view into row-major order (an odometer over the index, one stride add per step).
private func copyStrided(_ tensor: StoredTensor, from source: UnsafeRawPointer, into out: UnsafeMutableBufferPointer<Float>) {
    let shape = tensor.shape, strides = tensor.strides
    guard tensor.elementCount > 0 else { return }
    var index = [Int](repeating: 0, count: shape.count)
    var element = 0
    for i in 0..<tensor.elementCount {
        out[i] = loadFloat(tensor.dtype, source, element: element)
        var axis = shape.count - 1
        while axis >= 0 {
            index[axis] += 1
            element += strides[axis]
            if index[axis] < shape[axis] { break }
            element -= strides[axis] * shape[axis]
            index[axis] = 0
            axis -= 1
        }
    }
}

/// Runs `convert` over 0..<count split across the cores.
private func convertInParallel(_ count: Int, _ convert: (Range<Int>) -> Void) {
    let parts = count < (1 << 20) ? 1 : ProcessInfo.processInfo.activeProcessorCount
    parallelFor(parts) { part in convert((count * part / parts)..<(count * (part + 1) / parts)) }
}
