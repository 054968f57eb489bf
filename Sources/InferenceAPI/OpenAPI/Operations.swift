// MARK: - Each endpoint's words and schemas in /openapi.json

extension OperationDocumentation {
    private static func json(_ schema: String) -> [(mediaType: String, schema: JSONValue)] { [("application/json", Self.schema(schema))] }

    static let completions = OperationDocumentation(
        operationID: "createCompletion", summary: "Complete prompts (OpenAI Completions API).", requestSchema: "CompletionRequest",
        successDescription: "A completion, or with stream: true server-sent events 'data: {chunk}' ending with 'data: [DONE]'.",
        successContent: json("Completion") + [("text/event-stream", .object([
            "description": "One server-sent event: 'data' is a Completion chunk as JSON, an error object as JSON, or '[DONE]'.",
            "type": "object", "required": .array(["data"]),
            "properties": .object(["data": .object(["type": "string"]), "event": .object(["type": "string"])]),
        ]))])

    static let listModels = OperationDocumentation(
        operationID: "listModels", summary: "The served model, in OpenAI's list format.", requestSchema: nil,
        successDescription: "The model list.", successContent: json("ModelList"))

    static let retrieveModel = OperationDocumentation(
        operationID: "retrieveModel", summary: "One model by id.", requestSchema: nil,
        successDescription: "The model.", successContent: json("Model"))

    static let tokenize = OperationDocumentation(
        operationID: "tokenize", summary: "Text to token ids (vLLM's extension).", requestSchema: "TokenizeRequest",
        successDescription: "The ids.", successContent: json("TokenizeResponse"))

    static let detokenize = OperationDocumentation(
        operationID: "detokenize", summary: "Token ids to text (vLLM's extension).", requestSchema: "DetokenizeRequest",
        successDescription: "The text.", successContent: json("DetokenizeResponse"))

    static let embeddings = OperationDocumentation(
        operationID: "createEmbedding", summary: "One vector per input from the model's final hidden states (OpenAI Embeddings API).",
        requestSchema: "EmbeddingsRequest", successDescription: "The vectors.", successContent: json("EmbeddingsResponse"))

    static let classify = OperationDocumentation(
        operationID: "classify", summary: "Labels for each text, from the sequence-classification head (400 missing_head without one).",
        requestSchema: "ClassifyRequest", successDescription: "Labels and scores.", successContent: json("ClassifyResponse"))

    static let classifyTokens = OperationDocumentation(
        operationID: "classifyTokens", summary: "Entities in each text, from the token-classification head (400 missing_head without one).",
        requestSchema: "ClassifyTokensRequest", successDescription: "Entities.", successContent: json("ClassifyTokensResponse"))

    static let answer = OperationDocumentation(
        operationID: "answerQuestion", summary: "Answers cut from the context, from the question-answering head (400 missing_head without one).",
        requestSchema: "AnswerRequest", successDescription: "The best answers per question.", successContent: json("AnswerResponse"))

    static let health = OperationDocumentation(
        operationID: "health", summary: "Liveness: 200 while the process is alive.", requestSchema: nil,
        successDescription: "Alive.", successContent: json("Status"))

    static let healthAlias = OperationDocumentation(
        operationID: "healthAlias", summary: "The same as /healthz.", requestSchema: nil,
        successDescription: "Alive.", successContent: json("Status"))

    static let ready = OperationDocumentation(
        operationID: "ready", summary: "Readiness: 200 once the model is loaded and warmed up; 503 before that and while draining.",
        requestSchema: nil, successDescription: "Ready.", successContent: json("Status"),
        extraResponses: [("503", .object(["description": "Loading, warming up or draining.",
                                          "content": .object(["application/json": .object(["schema": schema("Status")])])]))])

    static let metrics = OperationDocumentation(
        operationID: "metrics", summary: "Prometheus text format: requests, latencies, tokens, queue, batch, KV cache, memory.",
        requestSchema: nil, successDescription: "Metrics.", successContent: [("text/plain", .object(["type": "string"]))])

    static let openAPI = OperationDocumentation(
        operationID: "openapi", summary: "This document.", requestSchema: nil,
        successDescription: "OpenAPI 3.1.", successContent: [("application/json", .object(["type": "object"]))])
}
