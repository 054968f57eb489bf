import Batcher
import Foundation
import HTTPServer

// MARK: - POST /v1/completions

/// Validates a completion request, submits one generation per prompt, and answers either one JSON
/// body or a stream of server-sent events.
struct CompletionsHandler: Sendable {
    let context: ServingContext
    let limits: CompletionLimits
    let metrics: APIMetrics

    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let started = ContinuousClock.now
        do {
            let completion = try CompletionRequest(body: request.body, vocabularySize: context.tokenizer.vocabularySize, limits: limits,
                                                   defaults: context.model.samplingDefaults)
            if let model = completion.model, model != context.model.id {
                throw APIError.modelNotFound(model, served: context.model.id)
            }
            let prompts = try prepare(completion)
            let estimatedBytes = completion.estimatedResponseBytes(promptTokenCounts: prompts.map(\.tokens.count))
            if !completion.stream && estimatedBytes > limits.maxResponseBytes {
                throw APIError.invalidField(
                    completion.echo ? "echo" : completion.logprobs != nil ? "logprobs" : "max_tokens",
                    "The answer to this request could take about \(estimatedBytes) bytes (\(completion.n) choices of up to \(completion.maxTokens) tokens\(completion.echo ? " plus the echoed prompt" : "")\(completion.logprobs.map { " with \($0) logprobs each" } ?? "")), more than this server's limit of \(limits.maxResponseBytes) bytes for a response built whole. Lower 'n', 'max_tokens' or 'logprobs', drop 'echo', or set 'stream' to true.",
                    code: "response_too_large")
            }
            let streams = try submit(completion, prompts: prompts)
            let identity = CompletionIdentity(id: "cmpl-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(),
                                              created: Int(Date().timeIntervalSince1970), model: context.model.id)
            let timing = TokenTiming(started: started, metrics: metrics)
            if completion.stream {
                return streamingResponse(completion, identity: identity, prompts: prompts, streams: streams, timing: timing)
            }
            var results = prompts.map { _ in PromptResult(choiceCount: completion.generatedChoices) }
            try await forEachEvent(streams) { promptIndex, event in
                timing.record(event, prompt: promptIndex)
                results[promptIndex].apply(event)
            }
            let body = completion.responseBody(identity: identity, prompts: prompts, results: results, tokenizer: context.tokenizer)
            return body.response(estimatedBytes: estimatedBytes)
        } catch {
            return Self.apiError(for: error).response
        }
    }

    // MARK: Tokenize and check the context

    private func prepare(_ completion: CompletionRequest) throws(APIError) -> [PreparedPrompt] {
        let contextLength = context.model.contextLength
        return try completion.prompts.enumerated().map { (i, prompt) throws(APIError) in
            if case .text(let text) = prompt {
                let fewest = fewestTokens(text, longestTokenBytes: context.longestTokenBytes)
                if fewest > contextLength || completion.maxTokens > contextLength - fewest {
                    throw .contextLengthExceeded(param: fewest >= contextLength ? (completion.prompts.count == 1 ? "prompt" : "prompt[\(i)]") : "max_tokens",
                                                 promptTokens: fewest, maxTokens: completion.maxTokens, contextLength: contextLength, promptIsLowerBound: true)
                }
            }
            let prepared = switch prompt {
            case .text(let text): PreparedPrompt(text: text, tokens: context.tokenizer.encode(text, allowSpecialTokens: true))
            case .tokens(let ids): PreparedPrompt(text: context.tokenizer.decode(ids), tokens: ids)
            }
            // Written as a subtraction: `max_tokens` may be as large as Int.max.
            if prepared.tokens.count > contextLength || completion.maxTokens > contextLength - prepared.tokens.count {
                let param = prepared.tokens.count >= contextLength ? (completion.prompts.count == 1 ? "prompt" : "prompt[\(i)]") : "max_tokens"
                throw .contextLengthExceeded(param: param, promptTokens: prepared.tokens.count, maxTokens: completion.maxTokens, contextLength: contextLength)
            }
            return prepared
        }
    }

    /// Submits every prompt before answering so overload and validation errors become a status code;
    /// if a later prompt fails, the earlier streams are dropped, which cancels them.
    private func submit(_ completion: CompletionRequest, prompts: [PreparedPrompt]) throws -> [AsyncThrowingStream<GenerationEvent, Error>] {
        let parameters = completion.generationParameters
        return try prompts.map { try context.backend.submit(GenerationRequest(promptTokens: $0.tokens, parameters: parameters)) }
    }

    // MARK: Streaming

    private func streamingResponse(_ completion: CompletionRequest, identity: CompletionIdentity, prompts: [PreparedPrompt],
                                   streams: [AsyncThrowingStream<GenerationEvent, Error>], timing: TokenTiming) -> HTTPResponse {
        let tokenizer = context.tokenizer
        let headers: HTTPHeaders = ["Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"]
        return HTTPResponse(status: 200, headers: headers, body: .stream { writer in
            var encoder = StreamEncoder(request: completion, identity: identity, prompts: prompts, tokenizer: tokenizer)
            do {
                try await forEachEvent(streams) { promptIndex, event in
                    timing.record(event, prompt: promptIndex)
                    for chunk in encoder.chunks(for: event, prompt: promptIndex) { try await send(Self.sse(chunk), to: writer) }
                }
                if let usage = encoder.finalUsageChunk() { try await send(Self.sse(usage), to: writer) }
            } catch let gone as ClientGone {
                throw gone.underlying
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                // Headers are gone already: report the error as an event, as vLLM does.
                try await writer.write(Self.sse(Self.apiError(for: error).json))
            }
            try await writer.write(Array("data: [DONE]\n\n".utf8))
        })
    }

    /// Write errors mean the client has gone: they end the stream instead of becoming an error event.
    private func send(_ bytes: [UInt8], to writer: any HTTPBodyWriter) async throws {
        do { try await writer.write(bytes) } catch { throw ClientGone(underlying: error) }
    }

    static func sse(_ value: JSONValue) -> [UInt8] { Array("data: ".utf8) + value.encoded + Array("\n\n".utf8) }

    // MARK: Errors

    static func apiError(for error: Error) -> APIError {
        switch error {
        case let error as APIError: return error
        case is CancellationError:
            // The client went away (the server cancels its task): nobody reads this, the metrics do.
            return APIError(status: 499, message: "The client closed the request.", type: "invalid_request_error", code: "client_closed_request")
        case let error as BatcherError:
            switch error {
            case .overloaded: return .overloaded
            case .contextLengthExceeded(let prompt, let maxTokens, let context):
                return .contextLengthExceeded(param: "max_tokens", promptTokens: prompt, maxTokens: maxTokens, contextLength: context)
            case .exceedsMemoryBudget(let required, let budget):
                return .invalidField("max_tokens", "This request needs \(required) bytes of KV cache but the server's budget is \(budget) bytes; reduce 'max_tokens', 'n' or the prompt.", code: "exceeds_memory_budget")
            case .invalidRequest(let message): return .badRequest(message)
            case .invalidParameter(let param, let message): return .invalidField(param, message)
            case .shuttingDown: return .unavailable("The server is shutting down.")
            case .engineFailure(let message): return .internalError("The engine failed: \(message)")
            }
        default:
            return .internalError("Generation failed: \(error)")
        }
    }
}

/// A write to the client failed: the client went away mid-stream.
struct ClientGone: Error { var underlying: Error }

// MARK: - Merging the prompts' streams

/// Runs `body` for every event of every stream, in arrival order, one at a time. The first error
/// (from a stream or from `body`) cancels the rest; leaving early drops every stream.
func forEachEvent(_ streams: [AsyncThrowingStream<GenerationEvent, Error>],
                  _ body: (Int, GenerationEvent) async throws -> Void) async throws {
    enum Item: Sendable { case event(Int, GenerationEvent), failed(Error), done }
    let (merged, continuation) = AsyncStream<Item>.makeStream()
    try await withThrowingTaskGroup(of: Void.self) { group in
        for (index, stream) in streams.enumerated() {
            group.addTask {
                do {
                    for try await event in stream { continuation.yield(.event(index, event)) }
                    continuation.yield(.done)
                } catch {
                    continuation.yield(.failed(error))
                }
            }
        }
        var remaining = streams.count
        for await item in merged {
            switch item {
            case .event(let index, let event): try await body(index, event)
            case .failed(let error): throw error
            case .done: remaining -= 1
            }
            if remaining == 0 { break }
        }
        try Task.checkCancellation()
        group.cancelAll()
    }
}

// MARK: - Latency metrics

/// Time to first token and inter-token latency of one request.
final class TokenTiming: Sendable {
    private struct State { var sawFirst = false; var last: [Int: ContinuousClock.Instant] = [:] }
    private let started: ContinuousClock.Instant
    private let metrics: APIMetrics
    private let state = Locked(State())
    init(started: ContinuousClock.Instant, metrics: APIMetrics) { self.started = started; self.metrics = metrics }

    func record(_ event: GenerationEvent, prompt: Int) {
        let now = ContinuousClock.now
        switch event {
        case .token(let choice, _, _, _):
            let key = prompt << 16 | choice
            let (first, previous) = state.withLock { s -> (Bool, ContinuousClock.Instant?) in
                let first = !s.sawFirst
                s.sawFirst = true
                let previous = s.last[key]
                s.last[key] = now
                return (first, previous)
            }
            if first { metrics.timeToFirstToken.observe((now - started).seconds) }
            if let previous { metrics.interTokenLatency.observe((now - previous).seconds) }
        case .finished(_, let reason, _):
            metrics.finishedChoices.increment([reason.rawValue])
        case .usage(let promptTokens, let completionTokens):
            metrics.promptTokens.increment(by: Double(promptTokens))
            metrics.generatedTokens.increment(by: Double(completionTokens))
        case .prompt:
            break
        }
    }
}

extension Duration {
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) / 1e18
    }
}
