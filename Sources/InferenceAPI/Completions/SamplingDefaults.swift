import Batcher
import Foundation

// MARK: - The model's own sampling defaults

/// Sampling values a completion uses for the fields its request leaves out: the checkpoint's
/// `generation_config.json` where it sets them, otherwise OpenAI's defaults (temperature 1, top_p 1,
/// no top-k, no repetition penalty). This follows vLLM's `--generation-config auto`: only
/// `temperature`, `top_p`, `top_k` and `repetition_penalty` are taken, and `do_sample` is not
/// consulted (a request asks for greedy decoding with `temperature: 0`).
public struct SamplingDefaults: Sendable, Equatable {
    public var temperature: Double = 1
    public var topP: Double = 1
    /// 0 = off.
    public var topK: Int = 0
    public var repetitionPenalty: Double = 1
    public init() {}

    public static let fileName = "generation_config.json"

    /// The defaults in `directory/generation_config.json`; OpenAI's when the file is absent. A value
    /// that a request could not send (temperature above 2, top_p of 0...) is an error naming the key,
    /// so a checkpoint does not silently sample differently from what its file says.
    public static func load(directory: URL) throws -> SamplingDefaults {
        let url = directory.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { return SamplingDefaults() }
        return try decode(try Data(contentsOf: url), path: url.path)
    }

    public static func decode(_ data: Data, path: String = fileName) throws -> SamplingDefaults {
        let raw: RawGenerationConfig
        do { raw = try JSONDecoder().decode(RawGenerationConfig.self, from: data) } catch {
            throw SamplingDefaultsError(path: path, reason: "not a generation config: \(error)")
        }
        var defaults = SamplingDefaults()
        defaults.temperature = raw.temperature ?? defaults.temperature
        defaults.topP = raw.topP ?? defaults.topP
        defaults.topK = raw.topK ?? defaults.topK
        defaults.repetitionPenalty = raw.repetitionPenalty ?? defaults.repetitionPenalty
        // The same check a request's own values get, so the file cannot set what a request could not.
        var parameters = GenerationParameters()
        parameters.temperature = defaults.temperature
        parameters.topP = defaults.topP
        parameters.topK = defaults.topK
        parameters.repetitionPenalty = defaults.repetitionPenalty
        do {
            try parameters.validate(limits: GenerationLimits(), vocabularySize: 0)
        } catch {
            throw SamplingDefaultsError(path: path, reason: "\(error)")
        }
        return defaults
    }
}

public struct SamplingDefaultsError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
}

/// The keys we read; every other key of a generation config (`max_length`, `do_sample`, token ids...) is ignored.
private struct RawGenerationConfig: Decodable {
    var temperature: Double?
    var topP: Double?
    var topK: Int?
    var repetitionPenalty: Double?

    enum CodingKeys: String, CodingKey {
        case temperature
        case topP = "top_p"
        case topK = "top_k"
        case repetitionPenalty = "repetition_penalty"
    }
}
