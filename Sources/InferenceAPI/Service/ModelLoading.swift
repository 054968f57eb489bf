import Batcher
import Foundation
import GPTNeo
import Tokenizer

// MARK: - From a checkpoint directory to a serving context

public struct ModelLoadingError: Error, CustomStringConvertible {
    public var directory: String
    public var reason: String
    public var description: String { "cannot load the model in \(directory): \(reason)" }
}

extension ServingContext {
    /// Loads the checkpoint and its tokenizer and starts a batcher over them. The model id is
    /// `modelName`, or the directory's name as vLLM reports a local path's last component.
    public static func load(directory: URL, modelName: String? = nil,
                            batcher configuration: BatcherConfiguration = BatcherConfiguration(),
                            weights: WeightSettings = WeightSettings(),
                            tasks: TaskOptions = TaskOptions()) throws(ModelLoadingError) -> ServingContext {
        let model: GPTNeoModel
        let tokenizer: GPT2Tokenizer
        let samplingDefaults: SamplingDefaults
        do {
            // The tokenizer first: a broken one fails before the long weight load, and the heap its loading
            // frees is reused by the weights' allocations instead of staying free (and resident) after load.
            tokenizer = try GPT2Tokenizer.load(directory: directory)
            model = try GPTNeoModel.load(directory: directory, threads: configuration.threads, settings: weights)
            samplingDefaults = try SamplingDefaults.load(directory: directory)
        } catch {
            throw ModelLoadingError(directory: directory.path, reason: "\(error)")
        }
        guard tokenizer.vocabularySize <= model.config.vocabSize else {
            throw ModelLoadingError(directory: directory.path, reason: "the tokenizer has \(tokenizer.vocabularySize) ids but the model only \(model.config.vocabSize)")
        }
        let batcher = Batcher(model: model, tokenizer: tokenizer, configuration: configuration)
        let description = ModelDescription(id: modelName ?? directory.standardizedFileURL.lastPathComponent,
                                           contextLength: model.config.maxPositionEmbeddings,
                                           weightFormat: model.weightFormat.rawValue, weightBytes: model.weightBytes,
                                           samplingDefaults: samplingDefaults)
        let taskContext: TaskServingContext
        do {
            taskContext = try TaskServingContext.load(directory: directory, model: model, tokenizer: tokenizer, batcher: batcher,
                                                      modelID: description.id, options: tasks)
        } catch {
            throw ModelLoadingError(directory: tasks.headsConfiguration?.path ?? directory.path, reason: "task heads: \(error)")
        }
        return ServingContext(backend: batcher, tokenizer: tokenizer, model: description, tasks: taskContext)
    }
}
