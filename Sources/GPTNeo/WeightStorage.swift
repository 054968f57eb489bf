import CWidening
import Foundation

// How weight matrices are kept in memory. Decoding one sequence reads every weight once per token, so
// its speed is memory bandwidth over the weights' bytes: 16-bit weights halve the bytes, int8 quarters
// them. Only the stored matrices change; LayerNorm, softmax, biases, the position table and the KV
// cache stay float32 in every mode.
//
// float16 / bfloat16: the kernel widens each panel row to floats in registers before the FMA chain
// float32 uses (MatMul.swift); widening is exact, so a checkpoint stored in either computes, kept in it,
// exactly the function of its float32 upcast.
//
// int8: symmetric, one float32 scale per output channel (a row of W: for the tied embedding, a token's
// vector), as llama.cpp and ONNX Runtime keep float scales beside int8 weights. Products with them
// quantize the activation row to int8 too, per block of 32 k, and compute integer dot products
// (Int8DotKernel.swift), as llama.cpp's Q8_0 × Q8_0 and ONNX Runtime's dynamic quantization do.

// MARK: - Settings

/// The storage of weight matrices in memory.
public enum WeightFormat: String, Sendable, CaseIterable {
    case float32, float16, bfloat16, int8

    /// Bytes of one stored weight.
    public var elementBytes: Int {
        switch self {
        case .float32: return 4
        case .float16, .bfloat16: return 2
        case .int8: return 1
        }
    }
}

/// `--dtype`: the precision weights are kept in; `auto` keeps what the checkpoint stores.
public enum WeightDType: String, Sendable, CaseIterable { case auto, float32, float16, bfloat16 }

/// `--quantization`: `int8` quantizes every weight matrix at load, whatever the checkpoint stores.
public enum WeightQuantization: String, Sendable, CaseIterable { case none, int8 }

/// The two load-time choices together.
public struct WeightSettings: Sendable, Equatable {
    public var dtype: WeightDType
    public var quantization: WeightQuantization
    /// Whether weight matrices ask for transparent huge pages (WeightBuffer.swift): the same numbers,
    /// faster steps where the kernel hands huge pages out cheaply, a slower load where it does not.
    public var hugePages: Bool
    public init(dtype: WeightDType = .auto, quantization: WeightQuantization = .none, hugePages: Bool = false) {
        self.dtype = dtype; self.quantization = quantization; self.hugePages = hugePages
    }

    /// The format for a checkpoint whose weight matrices are stored as `stored` (nil: unknown, float32).
    public func format(stored: TensorDType?) -> WeightFormat {
        if quantization == .int8 { return .int8 }
        switch dtype {
        case .float32: return .float32
        case .float16: return .float16
        case .bfloat16: return .bfloat16
        case .auto: return stored == .f16 ? .float16 : stored == .bf16 ? .bfloat16 : .float32
        }
    }
}

// MARK: - Narrowing at load

/// The float16 nearest `value` (ties to even), as its bits. Exact for a value read from float16.
@inline(__always) func float16Bits(_ value: Float) -> UInt16 { Float16(value).bitPattern }

/// The bfloat16 nearest `value` (ties to even, as PyTorch's `.to(torch.bfloat16)`), as its bits:
/// the upper half of the float32 bits, rounded. Exact for a value read from bfloat16.
@inline(__always) func bfloat16Bits(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    if value.isNaN { return UInt16(bits >> 16) | 0x0040 }
    let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
    return UInt16(rounded >> 16)
}

/// The symmetric int8 scale of a row: its largest magnitude maps to ±127 (0 for an all-zero row).
func int8Scale(_ row: UnsafePointer<Float>, count: Int) -> Float {
    var largest: Float = 0
    for k in 0..<count { largest = max(largest, abs(row[k])) }
    return largest / 127
}

/// `value / scale` rounded to the nearest integer (ties away from zero), within ±127.
@inline(__always) func int8Quantized(_ value: Float, scale: Float) -> Int8 {
    guard scale > 0 else { return 0 }
    return Int8(max(-127, min(127, (value / scale).rounded())))
}

// MARK: - Panel rows in registers

/// 2 KB (64 panel rows) ahead in each stream of a 1-row tile over 16-bit panels. Measured on the
/// 125M shape (EngineBenchmark decode, 1 stream): 1.5 and 2 KB alike and fastest, 1 KB and 4 KB slower.
private let singleRowLookahead16 = 1024

enum Float16Panel: PanelElement {
    static var singleRowLookahead: Int { singleRowLookahead16 }
    /// Three: with six the compiler hoists the conversions of four panels and spills two accumulators.
    static var oneRowPanels: Int { 3 }
    @inline(__always) static func row(_ panel: UnsafePointer<UInt16>, _ offset: Int) -> PanelRow {
        let start = UnsafeRawPointer(panel + offset)
        return PanelRow(lowHalf: widenFloat16x8(start), highHalf: widenFloat16x8(start + 16))
    }
}

enum BFloat16Panel: PanelElement {
    static var singleRowLookahead: Int { singleRowLookahead16 }
    static var oneRowPanels: Int { 6 }
    @inline(__always) static func row(_ panel: UnsafePointer<UInt16>, _ offset: Int) -> PanelRow {
        let start = UnsafeRawPointer(panel + offset)
        return PanelRow(lowHalf: widenBFloat16x8(start), highHalf: widenBFloat16x8(start + 16))
    }

    /// The even columns, then the odd ones: each 32-bit lane of the row holds columns 2j (low half) and
    /// 2j + 1 (high half), so shifting the lanes left by 16 bits gives the even columns as floats and
    /// clearing their low halves the odd ones, two instructions without crossing lanes instead of two
    /// zero-extensions and two shifts.
    @inline(__always) static func laneRow(_ panel: UnsafePointer<UInt16>, _ offset: Int) -> PanelRow {
        let pairs = UnsafeRawPointer(panel + offset).loadUnaligned(as: SIMD8<UInt32>.self)
        let even = unsafeBitCast(pairs &<< 16, to: SIMD8<Float>.self)
        let odd = unsafeBitCast(pairs & 0xFFFF_0000, to: SIMD8<Float>.self)
        return PanelRow(lowHalf: even, highHalf: odd)
    }

    @inline(__always) static func columns(fromLanes lanes: PanelRow) -> PanelRow {
        var columns = PanelRow()
        for j in 0..<8 {
            columns[2 * j] = lanes[j]
            columns[2 * j + 1] = lanes[8 + j]
        }
        return columns
    }
}
