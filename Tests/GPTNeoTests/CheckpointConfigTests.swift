import Foundation
import XCTest
@testable import GPTNeo

/// config.json as published over the years: old keys are ignored, missing ones take transformers'
/// defaults, and a config of another architecture is refused by name.
final class CheckpointConfigTests: XCTestCase {
    func decode(_ text: String) throws -> GPTNeoConfig { try GPTNeoConfig.decode(Data(text.utf8), path: "config.json") }

    func testOldKeysOnlyAttentionTypesAndTorchDType() throws {
        // The 1.3B layout of 2021: attention_types without attention_layers, torch_dtype, summary_*,
        // gradient_checkpointing, tokenizer_class, and a nested object no version of GPTNeoConfig knows.
        let config = try decode("""
        {"activation_function": "gelu_new", "architectures": ["GPTNeoForCausalLM"], "attention_dropout": 0,
         "attention_types": [[["global", "local"], 12]], "bos_token_id": 50256, "embed_dropout": 0, "eos_token_id": 50256,
         "gradient_checkpointing": false, "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": null,
         "layer_norm_epsilon": 1e-05, "max_position_embeddings": 2048, "model_type": "gpt_neo", "num_heads": 16,
         "num_layers": 24, "resid_dropout": 0, "summary_activation": null, "summary_first_dropout": 0.1,
         "summary_proj_to_labels": true, "summary_type": "cls_index", "summary_use_proj": true,
         "task_specific_params": {"text-generation": {"do_sample": true, "max_length": 50, "temperature": 0.9}},
         "tokenizer_class": "GPT2Tokenizer", "torch_dtype": "float16", "transformers_version": "4.9.0.dev0",
         "use_cache": true, "vocab_size": 50257, "window_size": 256}
        """)
        XCTAssertEqual(config.attentionLayers.count, 24)
        XCTAssertEqual(config.attentionLayers.prefix(2), [.global, .local])
        XCTAssertEqual(config.intermediateSize, 4 * 2048)
    }

    func testAnotherArchitectureIsRefusedByName() {
        XCTAssertThrowsError(try decode(#"{"model_type": "gpt2", "n_embd": 768, "n_layer": 12}"#)) { error in
            XCTAssertEqual(error as? EngineError, .invalidConfig(path: "config.json", reason:
                "model_type is \"gpt2\", not \"gpt_neo\": this server runs GPT-Neo checkpoints only"))
        }
    }
}
