// MARK: - Checks at submission and memory accounting
// Everything a request can get wrong is rejected in `submit`, before it waits in the queue, so that a
// bad request costs nothing and the error reaches the client at once.

/// The limits OpenAI documents, so that a request accepted here is accepted there.
enum ParameterLimits {
    static let temperature = 0.0...2.0
    static let penalty = -2.0...2.0
    static let logitBias = -100.0...100.0
    static let logprobs = 0...20
    static let stopStrings = 4
    static let choices = 1...128
}

/// The worst-case KV bytes of a request with `sequences` sequences of `capacity` positions each.
func reservation(sequences: Int, capacity: Int, bytesPerSequence: (Int) -> Int) -> (perSequence: Int, total: Int) {
    let perSequence = bytesPerSequence(capacity)
    let (total, overflow) = perSequence.multipliedReportingOverflow(by: sequences)
    return (perSequence, overflow ? Int.max : total)
}

/// Throws the first problem of a generation request.
func validate(_ request: GenerationRequest, limits: ModelLimits, configuration: BatcherConfiguration) throws {
    let p = request.parameters
    try validatePrompt(request.promptTokens, limits: limits)
    guard p.maxTokens >= 0 else { throw BatcherError.invalidRequest("max_tokens must be at least 0, got \(p.maxTokens)") }
    if p.maxTokens > limits.contextLength - request.promptTokens.count {
        throw BatcherError.contextLengthExceeded(
            promptTokens: request.promptTokens.count, maxTokens: p.maxTokens, contextLength: limits.contextLength)
    }
    guard p.temperature.isFinite, ParameterLimits.temperature.contains(p.temperature) else {
        throw BatcherError.invalidRequest("temperature must be between 0 and 2, got \(p.temperature)")
    }
    guard p.topP.isFinite, p.topP > 0, p.topP <= 1 else {
        throw BatcherError.invalidRequest("top_p must be in (0, 1], got \(p.topP)")
    }
    guard p.topK >= 0 else { throw BatcherError.invalidRequest("top_k must be at least 0, got \(p.topK)") }
    for (name, value) in [("presence_penalty", p.presencePenalty), ("frequency_penalty", p.frequencyPenalty)] {
        guard value.isFinite, ParameterLimits.penalty.contains(value) else {
            throw BatcherError.invalidRequest("\(name) must be between -2 and 2, got \(value)")
        }
    }
    guard p.repetitionPenalty.isFinite, p.repetitionPenalty > 0 else {
        throw BatcherError.invalidRequest("repetition_penalty must be greater than 0, got \(p.repetitionPenalty)")
    }
    for (token, bias) in p.logitBias.sorted(by: { $0.key < $1.key }) {
        guard (0..<limits.vocabularySize).contains(token) else {
            throw BatcherError.invalidRequest("logit_bias names token \(token), outside the vocabulary of \(limits.vocabularySize)")
        }
        guard bias.isFinite, ParameterLimits.logitBias.contains(bias) else {
            throw BatcherError.invalidRequest("logit_bias values must be between -100 and 100, got \(bias) for token \(token)")
        }
    }
    guard p.stop.count <= ParameterLimits.stopStrings else {
        throw BatcherError.invalidRequest("at most \(ParameterLimits.stopStrings) stop strings, got \(p.stop.count)")
    }
    guard !p.stop.contains(where: \.isEmpty) else { throw BatcherError.invalidRequest("stop strings must not be empty") }
    if let logprobs = p.logprobs, !ParameterLimits.logprobs.contains(logprobs) {
        throw BatcherError.invalidRequest("logprobs must be between 0 and 20, got \(logprobs)")
    }
    guard ParameterLimits.choices.contains(p.n) else {
        throw BatcherError.invalidRequest("n must be between 1 and \(ParameterLimits.choices.upperBound), got \(p.n)")
    }
    guard p.n <= configuration.maxRunningSequences else {
        throw BatcherError.invalidRequest(
            "n = \(p.n) is more than the \(configuration.maxRunningSequences) sequences this server runs at once")
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
