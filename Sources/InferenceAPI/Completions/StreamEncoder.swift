import Batcher

// MARK: - Streaming chunks

/// Turns generation events into the chunks of a streamed completion, OpenAI's way: each chunk has
/// the response's shape with the new text of one choice; the choice's last chunk carries its
/// `finish_reason`; with `include_usage` every chunk has `usage: null` and one last chunk with no
/// choices carries the totals.
struct StreamEncoder {
    let request: CompletionRequest
    let identity: CompletionIdentity
    let prompts: [PreparedPrompt]
    let builder: LogprobsBuilder
    /// Per prompt, per choice: characters sent so far (for `text_offset`).
    private var offsets: [[Int]]
    private var echoed: [Bool]
    private var usagePrompt = 0
    private var usageCompletion = 0

    init(request: CompletionRequest, identity: CompletionIdentity, prompts: [PreparedPrompt], tokenizer: any TextTokenizer) {
        self.request = request; self.identity = identity; self.prompts = prompts
        builder = LogprobsBuilder(tokenizer: tokenizer, topCount: request.logprobs ?? 0)
        offsets = prompts.map { _ in Array(repeating: 0, count: request.n) }
        echoed = prompts.map { _ in false }
    }

    private var usageField: JSONValue? { request.includeUsage ? .null : nil }

    private func chunk(_ choice: JSONValue) -> JSONValue { identity.object(choices: [choice], usage: usageField) }

    mutating func chunks(for event: GenerationEvent, prompt promptIndex: Int) -> [JSONValue] {
        var out: [JSONValue] = []
        // The echo goes first, once per choice, with the prompt's logprobs when the batcher sent them.
        if request.echo && !echoed[promptIndex] {
            echoed[promptIndex] = true
            let prompt = prompts[promptIndex]
            var scores: [TokenLogprob?] = Array(repeating: nil, count: prompt.tokens.count)
            if case .prompt(let tokens, let logprobs) = event, tokens.count == logprobs.count, tokens == prompt.tokens { scores = logprobs }
            for choice in 0..<request.n {
                var logprobs = JSONValue.null
                if request.logprobs != nil {
                    logprobs = builder.json(tokens: prompt.tokens, scores: scores, offset: &offsets[promptIndex][choice])
                } else {
                    offsets[promptIndex][choice] += prompt.text.unicodeScalars.count
                }
                out.append(chunk(CompletionIdentity.choice(index: index(promptIndex, choice), text: prompt.text, logprobs: logprobs, finishReason: nil)))
            }
        }
        switch event {
        case .prompt:
            break
        case .token(let choice, let tokenID, let text, let logprob):
            guard choice < request.n else { break }
            var logprobs = JSONValue.null
            if request.logprobs != nil {
                logprobs = builder.json(tokens: [tokenID], scores: [logprob], offset: &offsets[promptIndex][choice])
            } else if text.isEmpty {
                // Nothing to say yet (the token's bytes do not form a character, or a stop string may begin).
                break
            }
            out.append(chunk(CompletionIdentity.choice(index: index(promptIndex, choice), text: text, logprobs: logprobs, finishReason: nil)))
        case .finished(let choice, let reason, let text):
            guard choice < request.n else { break }
            out.append(chunk(CompletionIdentity.choice(index: index(promptIndex, choice), text: text, logprobs: .null, finishReason: reason)))
        case .usage(let prompt, let completion):
            usagePrompt += prompt
            usageCompletion += completion
        }
        return out
    }

    /// The last chunk when `include_usage` was asked for.
    func finalUsageChunk() -> JSONValue? {
        guard request.includeUsage else { return nil }
        return identity.object(choices: [], usage: CompletionIdentity.usage(prompt: usagePrompt, completion: usageCompletion))
    }

    private func index(_ prompt: Int, _ choice: Int) -> Int { prompt * request.n + choice }
}
