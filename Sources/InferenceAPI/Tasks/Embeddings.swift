import Foundation

// Sentence embeddings from GPT-Neo's final hidden states (GPTNeoModel's `last_hidden_state`, after ln_f):
// `mean` over tokens, `weightedmean` (SGPT's position-weighted mean: token i of T weighs i / (1 + ... + T),
// so later tokens, which have seen more of the text, count more), or the `last` token's state.

/// How token states become one vector.
public enum EmbeddingPooling: String, Codable, Sendable, CaseIterable {
    case mean, weightedmean, last
}

/// `encoding_format` of OpenAI's embeddings API.
public enum EmbeddingEncodingFormat: String, Codable, Sendable, CaseIterable {
    case float, base64
}

public enum Embeddings {
    /// hidden: (rows, hiddenSize) -> hiddenSize values. Sums run in Double so long inputs lose nothing.
    public static func pool(hidden: [Float], rows: Int, hiddenSize: Int, pooling: EmbeddingPooling, normalize: Bool) -> [Float] {
        precondition(rows > 0 && hidden.count == rows * hiddenSize, "hidden states are rows × hiddenSize")
        var pooled = [Float](repeating: 0, count: hiddenSize)
        switch pooling {
        case .last:
            pooled = Array(hidden[(rows - 1) * hiddenSize..<rows * hiddenSize])
        case .mean, .weightedmean:
            var sums = [Double](repeating: 0, count: hiddenSize)
            var totalWeight = 0.0
            for r in 0..<rows {
                let weight = pooling == .mean ? 1.0 : Double(r + 1)
                totalWeight += weight
                for c in 0..<hiddenSize { sums[c] += weight * Double(hidden[r * hiddenSize + c]) }
            }
            pooled = sums.map { Float($0 / totalWeight) }
        }
        if normalize {
            // torch.nn.functional.normalize: v / max(||v||, 1e-12).
            let norm = max(sqrt(pooled.reduce(0.0) { $0 + Double($1) * Double($1) }), 1e-12)
            pooled = pooled.map { Float(Double($0) / norm) }
        }
        return pooled
    }

    /// OpenAI's base64 encoding: the little-endian float32 bytes of the vector.
    public static func base64(_ vector: [Float]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(vector.count * 4)
        for value in vector {
            let bits = value.bitPattern.littleEndian
            for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8((bits >> UInt32(shift)) & 0xFF)) }
        }
        return Data(bytes).base64EncodedString()
    }
}
