import Foundation

// The one type for weight matrices: every product with a weight (the linear layers, the LM head)
// and the token-embedding lookup go through it, so how a matrix is stored is decided here alone.

/// A weight matrix W (N, K) in PyTorch's (out, in) layout: N outputs, K inputs.
public final class WeightMatrix: @unchecked Sendable {
    /// Outputs (rows of W).
    public let outputs: Int
    /// Inputs (columns of W).
    public let inputs: Int
    /// Row-major (N, K) elements, kept alive by `tensor`.
    let elements: UnsafePointer<Float>
    private let tensor: FloatTensor

    /// Takes a checkpoint tensor of shape (N, K). An empty tensor (the reader's placeholder for a
    /// missing one, before `finish()` reports it) gives an empty matrix.
    public init(_ tensor: FloatTensor) {
        precondition(tensor.shape.count == 2 || tensor.count == 0, "a weight matrix needs a 2-D tensor, got shape \(tensor.shape)")
        outputs = tensor.shape.count == 2 ? tensor.shape[0] : 0
        inputs = tensor.shape.count == 2 ? tensor.shape[1] : 0
        self.tensor = tensor
        elements = tensor.pointer
    }

    /// Row n of W (an embedding lookup): out[k] = W[n, k] for k in 0..<K.
    func copyRow(_ n: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(n >= 0 && n < outputs, "row \(n) outside a matrix of \(outputs) rows")
        out.update(from: elements + n * inputs, count: inputs)
    }
}
