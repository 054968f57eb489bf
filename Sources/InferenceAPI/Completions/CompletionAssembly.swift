import Batcher

// MARK: - Logprobs in OpenAI's legacy shape

/// Builds `{tokens, token_logprobs, top_logprobs, text_offset}`. Like vLLM, a token's string is its own
/// decoded text, `text_offset` counts Unicode scalars (Python `str` indices) from the start of the
/// choice's text, and `top_logprobs` always includes the chosen token (so up to `logprobs + 1` entries).
struct LogprobsBuilder {
    let tokenizer: any TextTokenizer
    let topCount: Int

    func json(tokens: [Int], scores: [TokenLogprob?], offset: inout Int) -> JSONValue {
        var strings: [JSONValue] = []
        var tokenLogprobs: [JSONValue] = []
        var tops: [JSONValue] = []
        var offsets: [JSONValue] = []
        for (i, id) in tokens.enumerated() {
            let text = tokenizer.decode([id])
            strings.append(.string(text))
            offsets.append(.int(offset))
            offset += text.unicodeScalars.count
            guard let score = i < scores.count ? scores[i] : nil else {
                tokenLogprobs.append(.null)
                tops.append(.null)
                continue
            }
            tokenLogprobs.append(.double(Double(score.logprob)))
            var top = JSONObject()
            for alternative in score.top.prefix(topCount) {
                let key = tokenizer.decode([alternative.tokenID])
                if top[key] == nil { top[key] = .double(Double(alternative.logprob)) }
            }
            if top[text] == nil { top[text] = .double(Double(score.logprob)) }
            tops.append(.object(top))
        }
        return .object([
            "tokens": .array(strings),
            "token_logprobs": .array(tokenLogprobs),
            "top_logprobs": .array(tops),
            "text_offset": .array(offsets),
        ])
    }
}

// MARK: - Collecting a whole response

/// Everything one choice produced.
struct ChoiceResult {
    var text = ""
    var tokens: [Int] = []
    var scores: [TokenLogprob?] = []
    var finishReason: FinishReason?

    /// `best_of` ranks by the sum of the generated tokens' logprobs, as vLLM does.
    var cumulativeLogprob: Double { scores.reduce(0) { $0 + Double($1?.logprob ?? 0) } }
}

/// Everything one prompt produced.
struct PromptResult {
    var choices: [ChoiceResult]
    var promptTokens: [Int] = []
    var promptScores: [TokenLogprob?] = []
    var usagePrompt = 0
    var usageCompletion = 0

    init(choiceCount: Int) { choices = Array(repeating: ChoiceResult(), count: choiceCount) }

    mutating func apply(_ event: GenerationEvent) {
        switch event {
        case .prompt(let tokens, let logprobs):
            promptTokens = tokens
            promptScores = logprobs
        case .token(let choice, let tokenID, let text, let logprob):
            guard choices.indices.contains(choice) else { return }
            choices[choice].text += text
            choices[choice].tokens.append(tokenID)
            choices[choice].scores.append(logprob)
        case .finished(let choice, let reason, let text):
            guard choices.indices.contains(choice) else { return }
            choices[choice].text += text
            choices[choice].finishReason = reason
        case .usage(let prompt, let completion):
            usagePrompt = prompt
            usageCompletion = completion
        }
    }
}

/// A prompt after tokenization: what is echoed and what the model sees.
struct PreparedPrompt {
    var text: String
    var tokens: [Int]
}

/// The identity shared by every chunk of one response.
struct CompletionIdentity {
    var id: String
    var created: Int
    var model: String
    static let systemFingerprint = "fp_gptneo_server"

    func object(choices: [JSONValue], usage: JSONValue?) -> JSONValue {
        var object: JSONObject = [
            "id": .string(id),
            "object": .string("text_completion"),
            "created": .int(created),
            "model": .string(model),
            "system_fingerprint": .string(Self.systemFingerprint),
            "choices": .array(choices),
        ]
        if let usage { object["usage"] = usage }
        return .object(object)
    }

    static func usage(prompt: Int, completion: Int) -> JSONValue {
        .object(["prompt_tokens": .int(prompt), "completion_tokens": .int(completion), "total_tokens": .int(prompt + completion)])
    }

    static func choice(index: Int, text: String, logprobs: JSONValue, finishReason: FinishReason?) -> JSONValue {
        .object([
            "text": .string(text),
            "index": .int(index),
            "logprobs": logprobs,
            "finish_reason": .optional(finishReason?.rawValue),
        ])
    }
}

extension CompletionRequest {
    /// The non-streaming body: for each prompt the best `n` of its choices, indexed
    /// `promptIndex * n + rank` as OpenAI does. Encoded one choice at a time (`JSONPieces`), so that
    /// a large body is never held whole: the pieces are its bytes, in order.
    func responseBody(identity: CompletionIdentity, prompts: [PreparedPrompt], results: [PromptResult], tokenizer: any TextTokenizer) -> JSONPieces {
        let builder = LogprobsBuilder(tokenizer: tokenizer, topCount: logprobs ?? 0)
        var returned: [(index: Int, prompt: Int, choice: ChoiceResult)] = []
        for (promptIndex, result) in results.enumerated() {
            var ranked = Array(result.choices.enumerated())
            if generatedChoices > n {
                // Stable: equal scores keep generation order.
                ranked.sort { ($0.element.cumulativeLogprob, -$0.offset) > ($1.element.cumulativeLogprob, -$1.offset) }
            }
            for (rank, entry) in ranked.prefix(n).enumerated() { returned.append((promptIndex * n + rank, promptIndex, entry.element)) }
        }
        let usage = CompletionIdentity.usage(prompt: results.reduce(0) { $0 + $1.usagePrompt },
                                             completion: results.reduce(0) { $0 + $1.usageCompletion })
        let (echo, logprobs, choices) = (self.echo, self.logprobs, returned)
        return JSONPieces(prefix: identity.object(choices: [], usage: usage), arrayKey: "choices", count: choices.count) { i in
            let (index, promptIndex, choice) = choices[i]
            let prompt = prompts[promptIndex]
            let text = echo ? prompt.text + choice.text : choice.text
            var logprobsJSON = JSONValue.null
            if logprobs != nil {
                var offset = 0
                var tokens = choice.tokens
                var scores = choice.scores
                if echo {
                    let promptScores = results[promptIndex].promptScores
                    tokens = prompt.tokens + tokens
                    scores = (promptScores.count == prompt.tokens.count ? promptScores : Array(repeating: nil, count: prompt.tokens.count)) + scores
                }
                logprobsJSON = builder.json(tokens: tokens, scores: scores, offset: &offset)
            }
            return CompletionIdentity.choice(index: index, text: text, logprobs: logprobsJSON, finishReason: choice.finishReason ?? .length)
        }
    }

    /// About how many bytes the non-streamed answer takes, known before any work: every returned
    /// choice reports `max_tokens` tokens (plus the prompt's with `echo`), each with its text and,
    /// with `logprobs`, its string, logprob, offset and `logprobs + 1` alternatives. Saturates at
    /// Int.max.
    func estimatedResponseBytes(promptTokenCounts: [Int]) -> Int {
        let perToken = 8 + (logprobs.map { 42 + 38 * ($0 + 1) } ?? 0)
        var total = 200
        for promptTokens in promptTokenCounts {
            let tokens = (echo ? promptTokens : 0).addingReportingOverflow(maxTokens)
            let perChoice = tokens.partialValue.multipliedReportingOverflow(by: perToken)
            let perPrompt = (perChoice.partialValue + 120).multipliedReportingOverflow(by: n)
            let sum = total.addingReportingOverflow(perPrompt.partialValue)
            guard !tokens.overflow, !perChoice.overflow, !perPrompt.overflow, !sum.overflow else { return .max }
            total = sum.partialValue
        }
        return total
    }
}
