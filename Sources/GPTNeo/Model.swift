import Foundation

// The weights of transformers' `GPTNeoForCausalLM` (modeling_gpt_neo.py), named by role with the
// checkpoint key beside each. Matrices multiplied with activations are `WeightMatrix`es of PyTorch's
// (out, in) shape; vectors and the position table stay plain tensors.

// MARK: - Weights

/// One `GPTNeoBlock`: pre-LayerNorm attention and MLP.
struct BlockWeights: Sendable {
    let attnNormWeight: FloatTensor   // h.{i}.ln_1.weight (C)
    let attnNormBias: FloatTensor     // h.{i}.ln_1.bias (C)
    /// h.{i}.attn.attention.{q,k,v}_proj.weight (C, C) each, no bias, stacked into (3C, C): one
    /// product gives each row's [q | k | v].
    let wqkv: WeightMatrix
    let wo: WeightMatrix              // h.{i}.attn.attention.out_proj.weight (C, C)
    let bo: FloatTensor               // h.{i}.attn.attention.out_proj.bias (C)
    let ffnNormWeight: FloatTensor    // h.{i}.ln_2.weight (C)
    let ffnNormBias: FloatTensor      // h.{i}.ln_2.bias (C)
    let ffnUp: WeightMatrix           // h.{i}.mlp.c_fc.weight (I, C)
    let ffnUpBias: FloatTensor        // h.{i}.mlp.c_fc.bias (I)
    let ffnDown: WeightMatrix         // h.{i}.mlp.c_proj.weight (C, I)
    let ffnDownBias: FloatTensor      // h.{i}.mlp.c_proj.bias (C)
    let kind: GPTNeoConfig.AttentionKind
}

struct ModelWeights: Sendable {
    let tokenEmbedding: WeightMatrix    // transformer.wte.weight (V, C)
    let positionEmbedding: FloatTensor  // transformer.wpe.weight (P, C)
    let blocks: [BlockWeights]
    let finalNormWeight: FloatTensor    // transformer.ln_f.weight (C)
    let finalNormBias: FloatTensor      // transformer.ln_f.bias (C)
    /// lm_head.weight (V, C): `wte` itself when tied (every published GPT-Neo).
    let lmHead: WeightMatrix
    /// An int8 copy of a float32 LM head, through which greedy steps find the argmax reading a quarter
    /// of its bytes (GreedyArgmax.swift); nil for other formats.
    let lmHeadGuide: ArgmaxGuide?
}

// MARK: - Model

/// Weights of a loaded checkpoint: immutable, shared by every request.
public final class GPTNeoModel: Sendable {
    public let config: GPTNeoConfig
    public let directory: URL
    /// The checkpoint's tensors, for task heads that read more than the language model.
    public let checkpoint: Checkpoint
    let weights: ModelWeights
    /// How the weight matrices are kept in memory.
    public let weightFormat: WeightFormat

    /// Loads `config.json` and the weights of a Hugging Face checkpoint directory, validating every
    /// tensor the model needs (all missing names are reported at once). Weight matrices are repacked
    /// for the matmul kernel on `threads` threads, in the format `settings` choose; with `dtype` auto,
    /// the one the checkpoint stores its token embedding in.
    public static func load(directory: URL, threads: Int = availableCPUCount(),
                            settings: WeightSettings = WeightSettings()) throws -> GPTNeoModel {
        let config = try GPTNeoConfig.load(contentsOf: directory.appendingPathComponent("config.json"))
        let checkpoint = try Checkpoint(directory: directory)
        let format = settings.format(stored: checkpoint.stored("transformer.wte.weight")?.dtype)
        let weights = try loadWeights(config: config, checkpoint: checkpoint, format: format, threads: threads,
                                      hugePages: settings.hugePages)
        return GPTNeoModel(config: config, directory: directory, checkpoint: checkpoint, weights: weights, format: format)
    }

    init(config: GPTNeoConfig, directory: URL, checkpoint: Checkpoint, weights: ModelWeights, format: WeightFormat) {
        self.config = config; self.directory = directory; self.checkpoint = checkpoint; self.weights = weights
        weightFormat = format
    }

    /// Bytes of every weight the forward pass keeps: the matrices in their format (a tied LM head
    /// counted once), the float32 vectors and position table, and a float32 LM head's argmax guide.
    public var weightBytes: Int {
        var matrices = [weights.tokenEmbedding, weights.lmHead]
        var vectors = [weights.positionEmbedding, weights.finalNormWeight, weights.finalNormBias]
        for block in weights.blocks {
            matrices += [block.wqkv, block.wo, block.ffnUp, block.ffnDown]
            vectors += [block.attnNormWeight, block.attnNormBias, block.bo, block.ffnNormWeight, block.ffnNormBias,
                        block.ffnUpBias, block.ffnDownBias]
        }
        let unique = Dictionary(matrices.map { (ObjectIdentifier($0), $0.byteSize) }, uniquingKeysWith: { first, _ in first })
        return unique.values.reduce(0, +) + vectors.reduce(0) { $0 + $1.count * MemoryLayout<Float>.size }
            + (weights.lmHeadGuide?.byteSize ?? 0)
    }

    private static func loadWeights(config: GPTNeoConfig, checkpoint: Checkpoint, format: WeightFormat, threads: Int,
                                    hugePages: Bool) throws -> ModelWeights {
        let reader = checkpoint.reader()
        let (vocab, hidden, inner) = (config.vocabSize, config.hiddenSize, config.intermediateSize)
        func t(_ name: String, _ shape: [Int]) -> FloatTensor { reader.tensor("transformer." + name, shape: shape) }
        /// Checkpoint tensors stacked into one weight matrix, as every matrix of this model is stored.
        func repacked(_ sources: [TensorElements]) -> WeightMatrix {
            WeightMatrix(stacking: sources, format: format, threads: threads, hugePages: hugePages)
        }
        func matrix(_ name: String, _ shape: [Int]) -> WeightMatrix { repacked([reader.elements("transformer." + name, shape: shape)]) }

        let tokenEmbeddingSource = reader.elements("transformer.wte.weight", shape: [vocab, hidden])
        let tokenEmbedding = repacked([tokenEmbeddingSource])
        let positionEmbedding = t("wpe.weight", [config.maxPositionEmbeddings, hidden])
        var blocks: [BlockWeights] = []
        for (layer, kind) in config.attentionLayers.enumerated() {
            let p = "h.\(layer)."
            blocks.append(BlockWeights(
                attnNormWeight: t(p + "ln_1.weight", [hidden]),
                attnNormBias: t(p + "ln_1.bias", [hidden]),
                wqkv: repacked(["q_proj", "k_proj", "v_proj"].map {
                    reader.elements("transformer." + p + "attn.attention.\($0).weight", shape: [hidden, hidden])
                }),
                wo: matrix(p + "attn.attention.out_proj.weight", [hidden, hidden]),
                bo: t(p + "attn.attention.out_proj.bias", [hidden]),
                ffnNormWeight: t(p + "ln_2.weight", [hidden]),
                ffnNormBias: t(p + "ln_2.bias", [hidden]),
                ffnUp: matrix(p + "mlp.c_fc.weight", [inner, hidden]),
                ffnUpBias: t(p + "mlp.c_fc.bias", [inner]),
                ffnDown: matrix(p + "mlp.c_proj.weight", [hidden, inner]),
                ffnDownBias: t(p + "mlp.c_proj.bias", [hidden]),
                kind: kind))
        }
        let finalNormWeight = t("ln_f.weight", [hidden])
        let finalNormBias = t("ln_f.bias", [hidden])
        // transformers ties lm_head to wte whenever tie_word_embeddings is set, whatever the file holds.
        var lmHead = tokenEmbedding
        var lmHeadSource = tokenEmbeddingSource
        if !config.tieWordEmbeddings, checkpoint.contains("lm_head.weight") {
            lmHeadSource = reader.elements("lm_head.weight", shape: [vocab, hidden])
            lmHead = repacked([lmHeadSource])
        }
        try reader.finish()
        let lmHeadGuide = format == .float32 ? ArgmaxGuide(for: lmHead, source: lmHeadSource, threads: threads, hugePages: hugePages) : nil
        return ModelWeights(tokenEmbedding: tokenEmbedding, positionEmbedding: positionEmbedding, blocks: blocks,
                            finalNormWeight: finalNormWeight, finalNormBias: finalNormBias, lmHead: lmHead,
                            lmHeadGuide: lmHeadGuide)
    }
}
