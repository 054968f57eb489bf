import Foundation
import GPTNeo

// Parsing shared by the task endpoints: inputs as a string or an array of strings (or token arrays for
// embeddings), the model check, and the 400 for a head the model does not have.

extension TaskServingContext {
    /// 404 when `model` names another model (same answer as the other endpoints).
    func checkModel(_ fields: FieldReader) throws(APIError) {
        if let model = try fields.string("model"), model != modelID {
            throw .modelNotFound(model, served: modelID)
        }
    }

    /// 400 when an answer estimated at `estimatedBytes` would pass the server's response limit.
    func checkResponseSize(_ estimatedBytes: Int, param: String, advice: String) throws(APIError) {
        guard estimatedBytes > limits.maxResponseBytes else { return }
        throw .invalidField(param, "The answer to this request could take about \(estimatedBytes) bytes, more than this server's limit of \(limits.maxResponseBytes) bytes. \(advice)",
                            code: "response_too_large")
    }

    /// The 400 for an endpoint whose head this model lacks, naming the head and how to add one.
    func missingHead(_ kind: TaskHeadKind) -> APIError {
        let architecture = switch kind {
        case .sequenceClassification: "GPTNeoForSequenceClassification"
        case .tokenClassification: "GPTNeoForTokenClassification"
        case .questionAnswering: "GPTNeoForQuestionAnswering"
        }
        return APIError(
            status: 400,
            message: "The model '\(modelID)' has no \(kind.rawValue) head (`\(kind.tensorPrefix).weight`). Serve a \(architecture) checkpoint, or name a head file with task \"\(kind.rawValue)\" in the heads configuration.",
            type: "invalid_request_error", code: "missing_head")
    }

    /// Strings from `name`: one string or a non-empty array of strings. `wasArray` keeps the input's shape.
    func texts(_ fields: FieldReader, _ name: String) throws(APIError) -> (texts: [String], wasArray: Bool) {
        guard let value = fields.value(name) else { throw .invalidField(name, "'\(name)' is required.") }
        switch value {
        case .string(let text): return ([text], false)
        case .array(let elements):
            guard !elements.isEmpty else { throw .invalidField(name, "'\(name)' must not be an empty array.") }
            guard elements.count <= limits.maxInputs else {
                throw .invalidField(name, "'\(name)' has \(elements.count) items; at most \(limits.maxInputs) are allowed per request.")
            }
            var texts: [String] = []
            for (i, element) in elements.enumerated() {
                guard case .string(let text) = element else {
                    throw .invalidField(name, "'\(name)[\(i)]' must be a string, got \(element.kindDescription).")
                }
                texts.append(text)
            }
            return (texts, true)
        default:
            throw fields.typeError(name, "a string or an array of strings", value)
        }
    }

    /// Tokens of `text`, checked to be non-empty and to fit one forward pass.
    /// A text too long by its bytes alone is refused before it is tokenized.
    func tokens(of text: String, param: String) throws(APIError) -> [TokenSpan] {
        try checkLength(fewestTokens(text, longestTokenBytes: longestTokenBytes), param: param, atLeast: true)
        let tokens = tokenizer.taskTokens(text)
        try checkLength(tokens.count, param: param)
        return tokens
    }

    func checkLength(_ count: Int, param: String, atLeast: Bool = false) throws(APIError) {
        guard count > 0 || atLeast else { throw .invalidField(param, "'\(param)' is empty; it must contain at least one token.") }
        guard count <= contextLength else {
            throw .invalidField(param, "'\(param)' has \(atLeast ? "at least " : "")\(count) tokens; this model's maximum context length is \(contextLength) tokens.",
                                code: "context_length_exceeded")
        }
    }
}

extension FieldReader {
    /// A string from a fixed set (case-insensitive, as the pipelines' enums), or nil when absent.
    func choice<T: RawRepresentable & CaseIterable>(_ name: String, _ type: T.Type) throws(APIError) -> T? where T.RawValue == String {
        guard let text = try string(name) else { return nil }
        guard let value = T(rawValue: text.lowercased()) else {
            let allowed = T.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            throw .invalidField(name, "'\(name)' must be one of \(allowed), got '\(quotedPrefix(text))'.")
        }
        return value
    }

    /// An array of strings, or nil when absent.
    func strings(_ name: String) throws(APIError) -> [String]? {
        guard let value = value(name) else { return nil }
        guard case .array(let elements) = value else { throw typeError(name, "an array of strings", value) }
        var result: [String] = []
        for (i, element) in elements.enumerated() {
            guard case .string(let text) = element else {
                throw .invalidField(name, "'\(name)[\(i)]' must be a string, got \(element.kindDescription).")
            }
            result.append(text)
        }
        return result
    }
}

/// `usage` as OpenAI reports it for prompt-only work.
func promptUsage(_ tokens: Int) -> JSONValue {
    .object(["prompt_tokens": .int(tokens), "total_tokens": .int(tokens)])
}
