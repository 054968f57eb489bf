import Batcher

// MARK: - The request

/// A prompt as the client sent it: text, or token ids.
enum PromptInput: Equatable {
    case text(String)
    case tokens([Int])
}

/// Limits the API enforces before anything reaches the batcher.
public struct CompletionLimits: Sendable {
    /// What one prompt's generation may ask for (`n`/`best_of`, logprobs, stop strings): the batcher's
    /// limits, which the server configures with the same values.
    public var generation: GenerationLimits = { var limits = GenerationLimits(); limits.maxChoices = 16; return limits }()
    /// Most prompts in one request.
    public var maxPrompts = 32
    /// Most choices (prompts × best_of) in one request.
    public var maxTotalChoices = 64
    /// Largest non-streamed answer, estimated before any work from `n`, `max_tokens`, `logprobs` and
    /// `echo` (a streamed one is sent as it is made and never held whole).
    public var maxResponseBytes = 8 << 20
    public init() {}
}

/// A validated `POST /v1/completions` body (OpenAI's Completions API plus vLLM's extensions).
struct CompletionRequest {
    var model: String?
    var prompts: [PromptInput]
    var maxTokens = 16
    var temperature = 1.0
    var topP = 1.0
    var n = 1
    /// Choices generated per prompt; the best `n` by cumulative logprob are returned.
    var bestOf: Int?
    var stream = false
    var includeUsage = false
    var logprobs: Int?
    var echo = false
    var stop: [String] = []
    var presencePenalty = 0.0
    var frequencyPenalty = 0.0
    var logitBias: [Int: Double] = [:]
    var seed: UInt64?
    var user: String?
    var topK = 0
    var repetitionPenalty = 1.0
    var ignoreEOS = false

    /// Choices generated per prompt.
    var generatedChoices: Int { bestOf ?? n }

    /// Parses and validates everything that does not need the tokenizer's output.
    init(body: [UInt8], vocabularySize: Int, limits: CompletionLimits) throws(APIError) {
        let fields = try FieldReader(body: body)
        model = try fields.string("model")
        prompts = try Self.parsePrompts(fields, vocabularySize: vocabularySize, limits: limits)

        if let suffix = try fields.string("suffix"), !suffix.isEmpty {
            throw .invalidField("suffix", "'suffix' is not supported by this model (GPT-Neo has no fill-in-the-middle training).")
        }
        echo = try fields.bool("echo") ?? false
        maxTokens = try fields.int("max_tokens", in: 0...Int.max) ?? 16
        if maxTokens == 0 && !echo {
            throw .invalidField("max_tokens", "'max_tokens' must be at least 1 (0 is allowed only with 'echo' to score a prompt).")
        }
        temperature = try fields.double("temperature") ?? 1
        topP = try fields.double("top_p") ?? 1
        n = try fields.int("n", in: 1...limits.generation.maxChoices) ?? 1
        bestOf = try fields.int("best_of", in: 1...limits.generation.maxChoices)
        if let bestOf, bestOf < n {
            throw .invalidField("best_of", "'best_of' (\(bestOf)) must be greater than or equal to 'n' (\(n)).")
        }
        stream = try fields.bool("stream") ?? false
        if stream, let bestOf, bestOf > n {
            throw .invalidField("best_of", "'best_of' greater than 'n' cannot be used with 'stream': the best choices are known only at the end.")
        }
        if let options = fields.value("stream_options") {
            guard case .object(let object) = options else { throw fields.typeError("stream_options", "an object", options) }
            guard stream else { throw .invalidField("stream_options", "'stream_options' is only allowed when 'stream' is true.") }
            let inner = FieldReader(object: object)
            do { includeUsage = try inner.bool("include_usage") ?? false } catch {
                throw .invalidField("stream_options.include_usage", error.message.replacingOccurrences(of: "'include_usage'", with: "'stream_options.include_usage'"))
            }
        }
        logprobs = try fields.int("logprobs", in: Int.min...Int.max)
        stop = try Self.parseStop(fields)
        presencePenalty = try fields.double("presence_penalty") ?? 0
        frequencyPenalty = try fields.double("frequency_penalty") ?? 0
        logitBias = try Self.parseLogitBias(fields)
        if let seedValue = fields.value("seed") {
            let seed = try FieldReader.int(seedValue, param: "seed", in: Int.min...Int.max)
            self.seed = UInt64(bitPattern: Int64(seed))
        }
        user = try fields.string("user")
        // vLLM's convention: -1 (or 0) turns top-k off.
        let topK = try fields.int("top_k", in: -1...vocabularySize) ?? 0
        self.topK = max(topK, 0)
        repetitionPenalty = try fields.double("repetition_penalty") ?? 1
        ignoreEOS = try fields.bool("ignore_eos") ?? false
        do {
            try generationParameters.validate(limits: limits.generation, vocabularySize: vocabularySize)
        } catch .invalidParameter(let param, let message) {
            throw .invalidField(param == "n" && bestOf != nil ? "best_of" : param, message)
        } catch {
            throw .badRequest(error.description)
        }

        if prompts.count * generatedChoices > limits.maxTotalChoices {
            throw .invalidField(bestOf != nil ? "best_of" : "n",
                                "This request asks for \(prompts.count * generatedChoices) choices (\(prompts.count) prompts × \(generatedChoices)); at most \(limits.maxTotalChoices) are allowed.")
        }
    }

    // MARK: Field parsers

    private static func parsePrompts(_ fields: FieldReader, vocabularySize: Int, limits: CompletionLimits) throws(APIError) -> [PromptInput] {
        guard let value = fields.value("prompt") else { throw .invalidField("prompt", "'prompt' is required.") }
        let prompts: [PromptInput]
        switch value {
        case .string(let text):
            prompts = [.text(text)]
        case .array(let elements):
            guard let first = elements.first else { throw .invalidField("prompt", "'prompt' must not be an empty array.") }
            if case .number = first {} else if elements.count > limits.maxPrompts {
                throw .invalidField("prompt", "At most \(limits.maxPrompts) prompts per request, got \(elements.count).")
            }
            switch first {
            case .string:
                prompts = try elements.enumerated().map { (i, element) throws(APIError) in
                    guard case .string(let text) = element else {
                        throw .invalidField("prompt[\(i)]", "'prompt' mixes strings with \(element.kindDescription); send all strings or all token arrays.")
                    }
                    return .text(text)
                }
            case .number:
                prompts = [.tokens(try parseTokenIDs(elements, param: "prompt", vocabularySize: vocabularySize))]
            case .array:
                prompts = try elements.enumerated().map { (i, element) throws(APIError) in
                    guard case .array(let ids) = element else {
                        throw .invalidField("prompt[\(i)]", "'prompt' mixes token arrays with \(element.kindDescription).")
                    }
                    return .tokens(try parseTokenIDs(ids, param: "prompt[\(i)]", vocabularySize: vocabularySize))
                }
            default:
                throw .invalidField("prompt", "'prompt' must be a string, an array of strings, an array of token ids or an array of arrays of token ids; got an array of \(first.kindDescription == "null" ? "null" : first.kindDescription + "s").")
            }
        default:
            throw fields.typeError("prompt", "a string or an array", value)
        }
        for (i, prompt) in prompts.enumerated() {
            let empty = switch prompt { case .text(let text): text.isEmpty; case .tokens(let ids): ids.isEmpty }
            if empty { throw .invalidField(prompts.count == 1 ? "prompt" : "prompt[\(i)]", "The prompt must not be empty.") }
        }
        return prompts
    }

    static func parseTokenIDs(_ elements: [JSONValue], param: String, vocabularySize: Int) throws(APIError) -> [Int] {
        try elements.enumerated().map { (i, element) throws(APIError) in
            guard case .number(let number) = element, let id = number.intValue else {
                throw .invalidField(param, "'\(param)' must contain only integer token ids; element \(i) is \(element.kindDescription).")
            }
            guard id >= 0 && id < vocabularySize else {
                throw .invalidField(param, "Token id \(id) at '\(param)[\(i)]' is outside the vocabulary (0..<\(vocabularySize)).", code: "invalid_token_id")
            }
            return id
        }
    }

    private static func parseStop(_ fields: FieldReader) throws(APIError) -> [String] {
        guard let value = fields.value("stop") else { return [] }
        let stops: [String]
        switch value {
        case .string(let stop): stops = [stop]
        case .array(let elements):
            stops = try elements.map { (element) throws(APIError) in
                guard case .string(let stop) = element else { throw fields.typeError("stop", "a string or an array of strings", element) }
                return stop
            }
        default: throw fields.typeError("stop", "a string or an array of strings", value)
        }
        return stops
    }

    private static func parseLogitBias(_ fields: FieldReader) throws(APIError) -> [Int: Double] {
        guard let value = fields.value("logit_bias") else { return [:] }
        guard case .object(let object) = value else { throw fields.typeError("logit_bias", "an object mapping token ids to numbers", value) }
        var bias: [Int: Double] = [:]
        for (key, entry) in object.entries {
            guard let id = Int(key) else {
                throw .invalidField("logit_bias", "'logit_bias' keys must be token ids, got '\(quotedPrefix(key))'.", code: "invalid_token_id")
            }
            guard case .number(let number) = entry else {
                throw .invalidField("logit_bias", "'logit_bias' values must be numbers; token \(id) has \(entry.kindDescription).")
            }
            bias[id] = number.doubleValue
        }
        return bias
    }

    // MARK: To the batcher

    /// The batcher's parameters for one prompt. Ranking `best_of` needs every token's logprob, so
    /// logprobs are requested from the batcher then even if the client did not ask for them.
    var generationParameters: GenerationParameters {
        var p = GenerationParameters()
        p.maxTokens = maxTokens
        p.temperature = temperature
        p.topP = topP
        p.topK = topK
        p.presencePenalty = presencePenalty
        p.frequencyPenalty = frequencyPenalty
        p.repetitionPenalty = repetitionPenalty
        p.logitBias = logitBias
        p.seed = seed
        p.stop = stop
        p.ignoreEOS = ignoreEOS
        p.logprobs = logprobs ?? (generatedChoices > n ? 0 : nil)
        p.echo = echo
        p.n = generatedChoices
        return p
    }
}

extension FieldReader {
    init(object: JSONObject) { self.object = object }
}
