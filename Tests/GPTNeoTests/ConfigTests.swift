import Foundation
import XCTest
@testable import GPTNeo

final class ConfigTests: XCTestCase {
    /// Shaped like EleutherAI/gpt-neo-125M's config.json, with the keys we ignore.
    let publishedStyle = """
    {"activation_function": "gelu_new", "architectures": ["GPTNeoForCausalLM"], "attention_dropout": 0,
     "attention_layers": ["global","local","global","local","global","local","global","local","global","local","global","local"],
     "attention_types": [[["global","local"],6]], "bos_token_id": 50256, "embed_dropout": 0,
     "eos_token_id": 50256, "gradient_checkpointing": false, "hidden_size": 768, "initializer_range": 0.02,
     "intermediate_size": null, "layer_norm_epsilon": 1e-05, "max_position_embeddings": 2048,
     "model_type": "gpt_neo", "num_heads": 12, "num_layers": 12, "resid_dropout": 0,
     "summary_activation": null, "summary_first_dropout": 0.1, "summary_proj_to_labels": true,
     "summary_type": "cls_index", "summary_use_proj": true, "transformers_version": "4.9.0.dev0",
     "use_cache": true, "vocab_size": 50257, "window_size": 256}
    """

    func decode(_ text: String) throws -> GPTNeoConfig { try GPTNeoConfig.decode(Data(text.utf8), path: "c.json") }

    func testPublishedConfigDecodes() throws {
        let config = try decode(publishedStyle)
        XCTAssertEqual(config.hiddenSize, 768)
        XCTAssertEqual(config.intermediateSize, 3072)
        XCTAssertEqual(config.attentionLayers.count, 12)
        XCTAssertEqual(config.attentionLayers.prefix(3), [.global, .local, .global])
        XCTAssertEqual(config.windowSize, 256)
        XCTAssertEqual(config.maxPositionEmbeddings, 2048)
        XCTAssertEqual(config.layerNormEpsilon, 1e-5)
        XCTAssertEqual(config.headDim, 64)
        XCTAssertEqual(config.bosTokenID, 50256)
        XCTAssertNil(config.padTokenID)
        XCTAssertEqual(config.labels, [:])
        XCTAssertEqual(config.activation, .geluNew)
    }

    func testLabelsAndProblemType() throws {
        var text = publishedStyle.replacingOccurrences(of: "\"window_size\": 256}", with:
            "\"window_size\": 256, \"id2label\": {\"0\": \"NEGATIVE\", \"1\": \"POSITIVE\"}, \"label2id\": {\"NEGATIVE\": 0, \"POSITIVE\": 1}, \"problem_type\": \"single_label_classification\", \"pad_token_id\": 50256}")
        var config = try decode(text)
        XCTAssertEqual(config.labels, [0: "NEGATIVE", 1: "POSITIVE"])
        XCTAssertEqual(config.problemType, "single_label_classification")
        XCTAssertEqual(config.padTokenID, 50256)
        text = publishedStyle.replacingOccurrences(of: "\"window_size\": 256}", with: "\"window_size\": 256, \"num_labels\": 3}")
        config = try decode(text)
        XCTAssertEqual(config.labels, [0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"])
    }

    func testExplicitIntermediateSizeAndLayerList() throws {
        let text = """
        {"hidden_size": 32, "num_heads": 4, "num_layers": 3, "intermediate_size": 40,
         "attention_types": [[["global"], 1], [["local", "local"], 1]], "window_size": 4}
        """
        let config = try decode(text)
        XCTAssertEqual(config.intermediateSize, 40)
        XCTAssertEqual(config.attentionLayers, [.global, .local, .local])
    }

    func assertInvalid(_ text: String, _ check: (EngineError) -> Bool, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try decode(text), file: file, line: line) { error in
            print("expected error: \(error)")
            guard let engineError = error as? EngineError, check(engineError) else { return XCTFail("unexpected \(error)", file: file, line: line) }
        }
    }

    func testInvalidConfigs() {
        func isInvalid(_ e: EngineError) -> Bool { if case .invalidConfig(let path, _) = e { return path == "c.json" }; return false }
        assertInvalid("{\"hidden_size\": 30, \"num_heads\": 4, \"num_layers\": 2, \"attention_types\": [[[\"global\"], 2]]}", isInvalid)
        assertInvalid("{\"num_layers\": 3}", isInvalid) // default attention_types gives 24 layers
        assertInvalid("{\"hidden_size\": \"big\"}", isInvalid)
        assertInvalid("not json", isInvalid)
        assertInvalid("{\"num_layers\": 1, \"attention_types\": [[[\"sparse\"], 1]]}", isInvalid)
        assertInvalid("{\"window_size\": 0}", isInvalid)
        assertInvalid("{\"activation_function\": \"relu\"}") { $0 == .unknownActivation(path: "c.json", name: "relu") }
    }
}
