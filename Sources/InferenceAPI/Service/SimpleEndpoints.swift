import HTTPServer

// MARK: - GET /v1/models

enum ModelEndpoints {
    /// `tasks`: what the model serves (generation, embeddings, its heads' tasks) when known.
    static func modelObject(_ model: ModelDescription, tasks: [String]? = nil) -> JSONValue {
        var object: JSONObject = [
            "id": .string(model.id),
            "object": "model",
            "created": .int(model.created),
            "owned_by": "gptneo-server",
            "root": .string(model.id),
            "parent": .null,
            "max_model_len": .int(model.contextLength),
        ]
        if let tasks { object["tasks"] = .array(tasks.map { .string($0) }) }
        if let format = model.weightFormat { object["weight_format"] = .string(format) }
        if let bytes = model.weightBytes { object["weight_bytes"] = .int(bytes) }
        return .object(object)
    }
}

// MARK: - POST /v1/tokenize, /v1/detokenize (vLLM's extension)

enum TokenizerEndpoints {
    static func tokenize(_ request: HTTPRequest, context: ServingContext) -> HTTPResponse {
        do {
            let fields = try FieldReader(body: request.body)
            try checkModel(fields, context)
            guard let prompt = try fields.string("prompt") else { throw APIError.invalidField("prompt", "'prompt' is required.") }
            let tokens = context.tokenizer.encode(prompt, allowSpecialTokens: true)
            return .json(.object([
                "tokens": .array(tokens.map { .int($0) }),
                "count": .int(tokens.count),
                "max_model_len": .int(context.model.contextLength),
            ]))
        } catch {
            return CompletionsHandler.apiError(for: error).response
        }
    }

    static func detokenize(_ request: HTTPRequest, context: ServingContext) -> HTTPResponse {
        do {
            let fields = try FieldReader(body: request.body)
            try checkModel(fields, context)
            guard let value = fields.value("tokens") else { throw APIError.invalidField("tokens", "'tokens' is required.") }
            guard case .array(let elements) = value else { throw fields.typeError("tokens", "an array of token ids", value) }
            let ids = try CompletionRequest.parseTokenIDs(elements, param: "tokens", vocabularySize: context.tokenizer.vocabularySize)
            return .json(.object(["prompt": .string(context.tokenizer.decode(ids))]))
        } catch {
            return CompletionsHandler.apiError(for: error).response
        }
    }

    private static func checkModel(_ fields: FieldReader, _ context: ServingContext) throws(APIError) {
        if let model = try fields.string("model"), model != context.model.id {
            throw .modelNotFound(model, served: context.model.id)
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}
