import Foundation
import GPTNeo
import HTTPServer

// POST /v1/classify, /v1/classify-tokens, /v1/answer, /v1/embeddings. Each request tokenizes its inputs,
// queues every sequence on the batcher at once (they batch with each other and with generation), runs
// the head on the hidden states and post-processes as transformers' pipelines do.

enum TaskEndpoints {
    typealias Handler = @Sendable (FieldReader, TaskServingContext) async throws -> TaskAnswer

    /// A handler's body and its size as estimated before the work (what decides how it is sent).
    struct TaskAnswer: Sendable {
        var body: JSONPieces
        var estimatedBytes: Int
    }

    /// Parses the body, checks the model and answers with `handler`'s JSON, or the error in OpenAI's shape.
    static func respond(_ request: HTTPRequest, context: TaskServingContext, _ handler: Handler) async -> HTTPResponse {
        do {
            let fields = try FieldReader(body: request.body)
            try context.checkModel(fields)
            let answer = try await handler(fields, context)
            return answer.body.response(estimatedBytes: answer.estimatedBytes)
        } catch {
            return CompletionsHandler.apiError(for: error).response
        }
    }

    // MARK: - /v1/classify

    static func classify(_ fields: FieldReader, _ context: TaskServingContext) async throws -> TaskAnswer {
        guard let head = context.heads.sequenceClassification else { throw context.missingHead(.sequenceClassification) }
        let (texts, _) = try context.texts(fields, "input")
        // Absent: the pipeline's default of 1; null: every label.
        let topK: Int?
        if fields.object["top_k"] == nil { topK = 1 } else if fields.value("top_k") == nil { topK = nil } else {
            topK = try fields.int("top_k", in: 1...Int.max)
        }
        let function = try fields.choice("function_to_apply", ClassificationFunction.self)
        let estimatedBytes = texts.count * (100 + 48 * (topK.map { min($0, head.labels.count) } ?? head.labels.count))
        try context.checkResponseSize(estimatedBytes, param: "top_k", advice: "Send fewer inputs or a smaller 'top_k'.")
        let tokens = try texts.enumerated().map { (i, text) throws(APIError) in
            try context.tokens(of: text, param: texts.count > 1 ? "input[\(i)]" : "input").map(\.id)
        }
        let logits = try await context.encodeAll(tokens) { i, hidden in try head.logits(hidden: hidden, tokens: tokens[i]) }
        var data: [JSONValue] = []
        for i in tokens.indices {
            let result = TextClassification.classify(logits: logits[i], labels: head.labels, function: function,
                                                     problemType: head.problemType, topK: topK)
            data.append(.object([
                "index": .int(i), "label": .string(result.label), "score": .double(result.score),
                "scores": .array(result.scores.map { .object(["label": .string($0.label), "score": .double($0.score)]) }),
            ]))
        }
        return response(context, data: data, promptTokens: tokens.reduce(0) { $0 + $1.count }, estimatedBytes: estimatedBytes)
    }

    // MARK: - /v1/classify-tokens

    static func classifyTokens(_ fields: FieldReader, _ context: TaskServingContext) async throws -> TaskAnswer {
        guard let head = context.heads.tokenClassification else { throw context.missingHead(.tokenClassification) }
        let (texts, _) = try context.texts(fields, "input")
        let strategy = try fields.choice("aggregation_strategy", AggregationStrategy.self) ?? .none
        let ignore = try fields.strings("ignore_labels") ?? ["O"]
        let tokens = try texts.enumerated().map { (i, text) throws(APIError) in
            try context.tokens(of: text, param: texts.count > 1 ? "input[\(i)]" : "input")
        }
        // At most one entity per token; its word is the token's text at most.
        let estimatedBytes = tokens.reduce(100) { total, spans in total + spans.reduce(40) { $0 + 110 + ($1.end - $1.start) } }
        try context.checkResponseSize(estimatedBytes, param: "input", advice: "Send less text, or group entities with 'aggregation_strategy'.")
        let logits = try await context.encodeAll(tokens.map { $0.map(\.id) }) { i, hidden in try head.logits(hidden: hidden, rows: tokens[i].count) }
        let tokenizer = context.tokenizer
        var data: [JSONValue] = []
        for (i, spans) in tokens.enumerated() {
            let entities = TokenClassification.entities(
                text: texts[i], tokens: spans, logits: logits[i], labels: head.labels,
                tokenBytes: { tokenizer.taskTokenBytes($0) }, unknownTokenID: tokenizer.endOfTextTokenID,
                strategy: strategy, ignoreLabels: ignore)
            data.append(.object(["index": .int(i), "entities": .array(entities.map(entityJSON))]))
        }
        return response(context, data: data, promptTokens: tokens.reduce(0) { $0 + $1.count }, estimatedBytes: estimatedBytes)
    }

    /// The pipeline's keys in its order: entity, score, index (strategy "none") or entity_group, score.
    static func entityJSON(_ entity: TokenEntity) -> JSONValue {
        var object = JSONObject()
        if let name = entity.entity { object["entity"] = .string(name) }
        if let group = entity.entityGroup { object["entity_group"] = .string(group) }
        object["score"] = .double(entity.score)
        if let index = entity.index { object["index"] = .int(index) }
        object["word"] = .string(entity.word)
        object["start"] = .int(entity.start)
        object["end"] = .int(entity.end)
        return .object(object)
    }

    // MARK: - /v1/answer

    static func answer(_ fields: FieldReader, _ context: TaskServingContext) async throws -> TaskAnswer {
        guard let head = context.heads.questionAnswering else { throw context.missingHead(.questionAnswering) }
        let (questions, questionsArray) = try context.texts(fields, "question")
        let (contexts, contextsArray) = try context.texts(fields, "context")
        // As the pipeline: several questions share one context, or pair up with as many contexts.
        let pairs: [(question: String, context: String)]
        switch (questionsArray, contextsArray) {
        case (_, false): pairs = questions.map { ($0, contexts[0]) }
        case (true, true):
            guard questions.count == contexts.count else {
                throw APIError.invalidField("context", "'question' has \(questions.count) items but 'context' has \(contexts.count); give as many contexts as questions, or one.")
            }
            pairs = Array(zip(questions, contexts))
        case (false, true):
            throw APIError.invalidField("question", "With several contexts, 'question' must be an array of as many questions.")
        }
        var p = QuestionAnsweringParameters()
        p.topK = try fields.int("top_k", in: 1...1000) ?? 1
        p.maxAnswerLength = try fields.int("max_answer_len", in: 1...100_000) ?? 15
        p.maxSequenceLength = try fields.int("max_seq_len", in: 1...context.contextLength) ?? min(384, context.contextLength)
        p.docStride = try fields.int("doc_stride", in: 0...p.maxSequenceLength) ?? min(p.maxSequenceLength / 2, 128)
        p.handleImpossibleAnswer = try fields.bool("handle_impossible_answer") ?? false

        // A shared context is tokenized once; the windows are counted before any is built, so that a
        // long context with a small stride is refused before it costs anything in proportion.
        let contextTokens = contexts.map { context.tokenizer.taskTokens($0) }
        let questionTokens = questions.map { context.tokenizer.taskTokens($0).map(\.id) }
        let pairTokens: [(question: [Int], context: Int)] = pairs.indices.map { i in
            (questionTokens[i], contextsArray ? i : 0)
        }
        var windowCount = 0
        for (i, pair) in pairTokens.enumerated() {
            let suffix = pairs.count > 1 ? "[\(i)]" : ""
            do {
                windowCount += try QuestionAnswering.layout(
                    questionTokens: pair.question.count, contextTokens: contextTokens[pair.context].count, parameters: p).count
            } catch let error as QuestionAnsweringError {
                let param = switch error {
                case .emptyInput(let field): field + suffix
                case .questionTooLong: "question" + suffix
                case .invalidParameter: "doc_stride"
                }
                throw APIError.invalidField(param, error.description)
            }
            guard windowCount <= context.limits.maxWindows else {
                throw APIError.invalidField("context", "The questions and contexts need more than \(context.limits.maxWindows) windows of max_seq_len tokens, the most allowed per request. Raise 'max_seq_len', lower 'doc_stride' or send less text.")
            }
        }
        let plans = try pairTokens.map { pair in
            (question: pair.question, context: contextTokens[pair.context],
             windows: try QuestionAnswering.windows(question: pair.question, context: contextTokens[pair.context].map(\.id), parameters: p))
        }
        let sequences = plans.flatMap { $0.windows.map(\.tokens) }
        let logits = try await context.encodeAll(sequences) { i, hidden in try head.logits(hidden: hidden, rows: sequences[i].count) }
        var data: [JSONValue] = []
        var next = 0
        for (i, plan) in plans.enumerated() {
            var starts: [[Float]] = [], ends: [[Float]] = []
            for _ in plan.windows {
                starts.append(logits[next].0); ends.append(logits[next].1)
                next += 1
            }
            let answers = QuestionAnswering.answers(
                context: pairs[i].context, questionTokenCount: plan.question.count, contextTokens: plan.context,
                windows: plan.windows, startLogits: starts, endLogits: ends, parameters: p)
            data.append(.object(["index": .int(i), "answers": .array(answers.map {
                .object(["score": .double($0.score), "start": .int($0.start), "end": .int($0.end), "answer": .string($0.answer)])
            })]))
        }
        return response(context, data: data, promptTokens: sequences.reduce(0) { $0 + $1.count }, estimatedBytes: 0)
    }

    // MARK: - /v1/embeddings

    static func embeddings(_ fields: FieldReader, _ context: TaskServingContext) async throws -> TaskAnswer {
        if fields.value("dimensions") != nil {
            throw APIError.invalidField("dimensions", "'dimensions' is not supported: this model's embeddings have \(context.hiddenSize) dimensions.")
        }
        let format = try fields.choice("encoding_format", EmbeddingEncodingFormat.self) ?? .float
        let sequences = try embeddingInputs(fields, context)
        // A float is at most ~16 characters and a comma as JSON, 4 bytes as 5.33 of base64.
        let estimatedBytes = sequences.count * (60 + context.hiddenSize * (format == .base64 ? 6 : 17))
        try context.checkResponseSize(estimatedBytes, param: "input", advice: "Send fewer inputs per request, or use 'encoding_format': 'base64'.")
        let hiddenSize = context.hiddenSize, pooling = context.embeddings
        let vectors = try await context.encodeAll(sequences) { i, hidden in
            Embeddings.pool(hidden: hidden, rows: sequences[i].count, hiddenSize: hiddenSize, pooling: pooling.pooling, normalize: pooling.normalize)
        }
        let tokens = sequences.reduce(0) { $0 + $1.count }
        let prefix: JSONValue = .object(["object": "list", "data": .array([]), "model": .string(context.modelID), "usage": promptUsage(tokens)])
        // Each vector becomes JSON only when it is sent.
        let body = JSONPieces(prefix: prefix, arrayKey: "data", count: vectors.count) { i in
            let embedding: JSONValue = format == .base64
                ? .string(Embeddings.base64(vectors[i])) : .array(vectors[i].map { .double(Double($0)) })
            return .object(["object": "embedding", "index": .int(i), "embedding": embedding])
        }
        return TaskAnswer(body: body, estimatedBytes: estimatedBytes)
    }

    /// OpenAI's `input`: a string, an array of strings, an array of token ids, or an array of such arrays.
    static func embeddingInputs(_ fields: FieldReader, _ context: TaskServingContext) throws(APIError) -> [[Int]] {
        guard let value = fields.value("input") else { throw .invalidField("input", "'input' is required.") }
        let vocabulary = context.tokenizer.vocabularySize
        func ids(_ elements: [JSONValue], _ param: String) throws(APIError) -> [Int] {
            let ids = try CompletionRequest.parseTokenIDs(elements, param: param, vocabularySize: vocabulary)
            try context.checkLength(ids.count, param: param)
            return ids
        }
        if case .array(let elements) = value, let first = elements.first, case .number = first {
            return [try ids(elements, "input")]
        }
        if case .array(let elements) = value, let first = elements.first, case .array = first {
            guard elements.count <= context.limits.maxInputs else {
                throw .invalidField("input", "'input' has \(elements.count) items; at most \(context.limits.maxInputs) are allowed per request.")
            }
            return try elements.enumerated().map { (i, element) throws(APIError) in
                guard case .array(let inner) = element else {
                    throw .invalidField("input", "'input[\(i)]' must be an array of token ids like the first item, got \(element.kindDescription).")
                }
                return try ids(inner, "input[\(i)]")
            }
        }
        let (texts, _) = try context.texts(fields, "input")
        return try texts.enumerated().map { (i, text) throws(APIError) in
            try context.tokens(of: text, param: texts.count > 1 ? "input[\(i)]" : "input").map(\.id)
        }
    }

    // MARK: - Helpers

    static func response(_ context: TaskServingContext, data: [JSONValue], promptTokens: Int, estimatedBytes: Int) -> TaskAnswer {
        let prefix: JSONValue = .object(["object": "list", "model": .string(context.modelID), "data": .array([]), "usage": promptUsage(promptTokens)])
        return TaskAnswer(body: JSONPieces(prefix: prefix, arrayKey: "data", count: data.count) { data[$0] }, estimatedBytes: estimatedBytes)
    }
}
