import Batcher
import Foundation
import HTTPServer
@testable import InferenceAPI

// MARK: - A byte-level tokenizer

/// Token id = byte value; 256 is `<|endoftext|>`. Enough to test text handling without a vocabulary.
struct ByteTokenizer: TextTokenizer {
    static let endOfText = "<|endoftext|>"
    var vocabularySize: Int { 257 }
    var endOfTextTokenID: Int? { 256 }
    /// `<|endoftext|>` is one token.
    var longestTokenBytes: Int { Self.endOfText.utf8.count }
    func encode(_ text: String, allowSpecialTokens: Bool) -> [Int] {
        guard allowSpecialTokens else { return text.utf8.map(Int.init) }
        var ids: [Int] = []
        for (i, piece) in text.components(separatedBy: Self.endOfText).enumerated() {
            if i > 0 { ids.append(256) }
            ids += piece.utf8.map(Int.init)
        }
        return ids
    }
    func decode(_ ids: [Int]) -> String {
        var bytes: [UInt8] = []
        var out = ""
        for id in ids {
            if id == 256 { out += String(decoding: bytes, as: UTF8.self) + Self.endOfText; bytes = [] } else { bytes.append(UInt8(id)) }
        }
        return out + String(decoding: bytes, as: UTF8.self)
    }
}

// MARK: - A deterministic backend

/// Choice `c` generates the letters `a`, `b`, ... starting at letter `c`; token k of choice c has
/// logprob `-(k+1)/10 - c`, so choice 0 always ranks best. Stop strings end a choice with `.stop`.
final class FakeBackend: CompletionBackend, @unchecked Sendable {
    private let lock = NSLock()
    private var _submitted: [GenerationRequest] = []
    var submitted: [GenerationRequest] { lock.withLock { _submitted } }
    func clearSubmitted() { lock.withLock { _submitted = [] } }
    /// Thrown by `submit` when set.
    var submitError: Error?
    /// Thrown from inside the stream after the first token when set.
    var streamError: Error?
    /// When set, a stream sends its events but never finishes: only its consumer's leaving ends it.
    var keepsStreamsOpen = false
    private var _cancelledStreams = 0
    /// Streams that ended because their consumer left (dropped or cancelled), as the batcher then cancels the request.
    var cancelledStreams: Int { lock.withLock { _cancelledStreams } }
    var stats = BatcherStatistics(queuedRequests: 2, runningSequences: 3, kvCacheBytesInUse: 1024, kvCacheBudgetBytes: 4096)

    static func letter(choice: Int, step: Int) -> Int { Int(UInt8(ascii: "a")) + (choice + step) % 26 }
    static func logprob(choice: Int, step: Int) -> Float { -Float(step + 1) / 10 - Float(choice) }

    func submit(_ request: GenerationRequest) throws -> AsyncThrowingStream<GenerationEvent, Error> {
        if let submitError { throw submitError }
        lock.withLock { _submitted.append(request) }
        let p = request.parameters
        let streamError = self.streamError
        let keepsOpen = keepsStreamsOpen
        return AsyncThrowingStream { continuation in
            continuation.onTermination = { [self] termination in
                if case .cancelled = termination { lock.withLock { _cancelledStreams += 1 } }
            }
            if p.echo {
                let scores: [TokenLogprob?] = request.promptTokens.enumerated().map { i, id in
                    i == 0 ? nil : TokenLogprob(tokenID: id, logprob: -0.5, top: [(tokenID: id, logprob: -0.5)])
                }
                continuation.yield(.prompt(tokens: request.promptTokens, logprobs: scores))
            }
            var completionTokens = 0
            for choice in 0..<p.n {
                var text = ""
                var reason = FinishReason.length
                for step in 0..<p.maxTokens {
                    let id = Self.letter(choice: choice, step: step)
                    let lp = Self.logprob(choice: choice, step: step)
                    let score = p.logprobs.map { k in
                        TokenLogprob(tokenID: id, logprob: lp, top: Array([(tokenID: id, logprob: lp), (tokenID: 256, logprob: lp - 1)].prefix(k)))
                    }
                    completionTokens += 1
                    text += String(UnicodeScalar(UInt8(id)))
                    if let stop = p.stop.first(where: { text.hasSuffix($0) }) {
                        // Single-letter stops only: the stop letter itself is not sent (as the batcher does).
                        _ = stop
                        continuation.yield(.token(choice: choice, tokenID: id, text: "", logprob: score))
                        reason = .stop
                        break
                    }
                    continuation.yield(.token(choice: choice, tokenID: id, text: String(UnicodeScalar(UInt8(id))), logprob: score))
                    if let streamError { continuation.finish(throwing: streamError); return }
                }
                continuation.yield(.finished(choice: choice, reason: reason, text: ""))
            }
            if keepsOpen { return }
            continuation.yield(.usage(promptTokens: request.promptTokens.count, completionTokens: completionTokens))
            continuation.finish()
        }
    }

    var statistics: BatcherStatistics { stats }
    func shutdown(gracePeriod: Duration) async {}
}

// MARK: - Driving the service without sockets

final class CollectingWriter: HTTPBodyWriter, @unchecked Sendable {
    private let lock = NSLock()
    private var _bytes: [UInt8] = []
    var bytes: [UInt8] { lock.withLock { _bytes } }
    func write(_ bytes: [UInt8]) async throws { lock.withLock { _bytes += bytes } }
}

struct Answer {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
    var json: JSONValue { (try? JSONParser.parse(body)) ?? .null }
    var errorParam: String? { if case .string(let p)? = json["error"]?["param"] { return p }; return nil }
    var errorCode: String? { if case .string(let c)? = json["error"]?["code"] { return c }; return nil }
}

extension InferenceService {
    /// A ready service over the fakes.
    static func makeReady(backend: FakeBackend = FakeBackend(), configuration: APIConfiguration = APIConfiguration(),
                          contextLength: Int = 64, samplingDefaults: SamplingDefaults = SamplingDefaults()) async throws -> InferenceService {
        let service = InferenceService(configuration: configuration)
        try await service.start(with: ServingContext(backend: backend, tokenizer: ByteTokenizer(),
                                                     model: ModelDescription(id: "tiny", contextLength: contextLength, created: 1700000000,
                                                                             samplingDefaults: samplingDefaults)))
        // Forget the warm-up generation so tests see only their own requests.
        backend.clearSubmitted()
        return service
    }

    func send(_ method: String, _ target: String, body: String? = nil, rawBody: [UInt8]? = nil, headers: HTTPHeaders = [:]) async -> Answer {
        let request = HTTPRequest(method: method, target: target, headers: headers, body: rawBody ?? Array((body ?? "").utf8), requestID: "test")
        let response = await handle(request)
        switch response.body {
        case .bytes(let bytes): return Answer(status: response.status, headers: response.headers, body: bytes)
        case .stream(let produce):
            let writer = CollectingWriter()
            try? await produce(writer)
            return Answer(status: response.status, headers: response.headers, body: writer.bytes)
        }
    }

    func complete(_ body: String, headers: HTTPHeaders = [:]) async -> Answer {
        await send("POST", "/v1/completions", body: body, headers: headers)
    }
}

extension JSONValue {
    var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    var intValue: Int? { if case .number(let n) = self { return n.intValue }; return nil }
    var doubleValue: Double? { if case .number(let n) = self { return n.doubleValue }; return nil }
    var arrayValue: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    subscript(index: Int) -> JSONValue? { arrayValue.flatMap { index < $0.count ? $0[index] : nil } }
}
