// MARK: - Checks at submission and memory accounting
// Everything a request can get wrong is rejected in `submit`, before it waits in the queue, so that a
// bad request costs nothing and the error reaches the client at once.

/// What a generation request may ask for. The configurable counts come from the server's settings
/// (OpenAI's values by default); the value ranges are OpenAI's, so that a request accepted here is
/// accepted there.
public struct GenerationLimits: Sendable, Equatable {
    /// Most choices generated from one prompt (`n`, or `best_of` when larger).
    public var maxChoices = 128
    /// Most alternatives reported per token.
    public var maxLogprobs = 20
    public var maxStopStrings = 4
    public init() {}

    public static let temperature = 0.0...2.0
    public static let penalty = -2.0...2.0
    public static let logitBias = -100.0...100.0
}

/// The worst-case KV bytes of a request with `sequences` sequences of `capacity` positions each.
func reservation(sequences: Int, capacity: Int, bytesPerSequence: (Int) -> Int) -> Int {
    let (total, overflow) = bytesPerSequence(capacity).multipliedReportingOverflow(by: sequences)
    return overflow ? Int.max : total
}

/// Throws the first problem of a generation request.
func validate(_ request: GenerationRequest, limits: ModelLimits, configuration: BatcherConfiguration) throws {
    let p = request.parameters
    try validatePrompt(request.promptTokens, limits: limits)
    try p.validate(limits: configuration.limits, vocabularySize: limits.vocabularySize)
    // Written as a subtraction: `maxTokens` may be as large as Int.max.
    if p.maxTokens > limits.contextLength - request.promptTokens.count {
        throw BatcherError.contextLengthExceeded(
            promptTokens: request.promptTokens.count, maxTokens: p.maxTokens, contextLength: limits.contextLength)
    }
    guard p.n <= configuration.maxRunningSequences else {
        throw BatcherError.invalidParameter(
            param: "n", message: "n = \(p.n) is more than the \(configuration.maxRunningSequences) sequences this server runs at once")
    }
}

extension GenerationParameters {
    /// Throws `BatcherError.invalidParameter` naming the first field (in OpenAI's terms) out of range.
    /// The one check of these values: the API runs it before tokenizing, `Batcher.submit` again.
    public func validate(limits: GenerationLimits, vocabularySize: Int) throws(BatcherError) {
        func invalid(_ param: String, _ message: String) -> BatcherError { .invalidParameter(param: param, message: message) }
        guard maxTokens >= 0 else { throw invalid("max_tokens", "max_tokens must be at least 0, got \(maxTokens)") }
        guard temperature.isFinite, GenerationLimits.temperature.contains(temperature) else {
            throw invalid("temperature", "temperature must be between 0 and 2, got \(temperature)")
        }
        guard topP.isFinite, topP > 0, topP <= 1 else { throw invalid("top_p", "top_p must be in (0, 1], got \(topP)") }
        guard topK >= 0 else { throw invalid("top_k", "top_k must be at least 0, got \(topK)") }
        for (name, value) in [("presence_penalty", presencePenalty), ("frequency_penalty", frequencyPenalty)] {
            guard value.isFinite, GenerationLimits.penalty.contains(value) else {
                throw invalid(name, "\(name) must be between -2 and 2, got \(value)")
            }
        }
        guard repetitionPenalty.isFinite, repetitionPenalty > 0, repetitionPenalty <= 10 else {
            throw invalid("repetition_penalty", "repetition_penalty must be greater than 0 and at most 10, got \(repetitionPenalty)")
        }
        for (token, bias) in logitBias.sorted(by: { $0.key < $1.key }) {
            guard (0..<vocabularySize).contains(token) else {
                throw invalid("logit_bias", "logit_bias names token \(token), outside the vocabulary of \(vocabularySize)")
            }
            guard bias.isFinite, GenerationLimits.logitBias.contains(bias) else {
                throw invalid("logit_bias", "logit_bias values must be between -100 and 100, got \(bias) for token \(token)")
            }
        }
        guard stop.count <= limits.maxStopStrings else {
            throw invalid("stop", "at most \(limits.maxStopStrings) stop strings, got \(stop.count)")
        }
        guard !stop.contains(where: \.isEmpty) else { throw invalid("stop", "stop strings must not be empty") }
        if let logprobs, !(0...limits.maxLogprobs).contains(logprobs) {
            throw invalid("logprobs", "logprobs must be between 0 and \(limits.maxLogprobs), got \(logprobs)")
        }
        guard (1...limits.maxChoices).contains(n) else {
            throw invalid("n", "n must be between 1 and \(limits.maxChoices), got \(n)")
        }
    }
}

/// A prompt must have tokens, all inside the vocabulary, and fit the context.
func validatePrompt(_ tokens: [Int], limits: ModelLimits) throws {
    guard !tokens.isEmpty else { throw BatcherError.invalidRequest("the prompt must contain at least one token") }
    if let bad = tokens.first(where: { !(0..<limits.vocabularySize).contains($0) }) {
        throw BatcherError.invalidRequest("token id \(bad) is outside the vocabulary of \(limits.vocabularySize)")
    }
    if tokens.count > limits.contextLength {
        throw BatcherError.contextLengthExceeded(promptTokens: tokens.count, maxTokens: 0, contextLength: limits.contextLength)
    }
}
