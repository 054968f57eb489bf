import Foundation
import GPTNeo
import Tokenizer
@testable import Batcher

// MARK: - The committed tiny checkpoint, loaded once for all end-to-end tests

enum TinyModel {
    static let model: GPTNeoModel = {
        do { return try GPTNeoModel.load(directory: Fixtures.tinyModel) } catch { fatalError("tiny model: \(error)") }
    }()
    /// The same checkpoint widened to float32: its LM head gets the int8 guide that greedy steps take.
    static let float32Model: GPTNeoModel = {
        do { return try GPTNeoModel.load(directory: Fixtures.tinyModel, settings: WeightSettings(dtype: .float32)) } catch {
            fatalError("tiny model: \(error)")
        }
    }()
    static let tokenizer: GPT2Tokenizer = {
        do { return try GPT2Tokenizer.load(directory: Fixtures.tinyModel) } catch { fatalError("tiny tokenizer: \(error)") }
    }()
    static let eos = 50256

    static func batcher(model: GPTNeoModel = model, _ configure: (inout BatcherConfiguration) -> Void = { _ in }) -> Batcher {
        var configuration = BatcherConfiguration()
        configure(&configuration)
        return Batcher(model: model, tokenizer: tokenizer, configuration: configuration)
    }
}
