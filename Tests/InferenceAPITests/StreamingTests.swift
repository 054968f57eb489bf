import Batcher
import HTTPServer
import XCTest
@testable import InferenceAPI

final class StreamingTests: XCTestCase {
    /// Splits an SSE body into its `data:` payloads, checking the framing byte for byte.
    private func events(_ answer: Answer, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        let text = answer.text
        XCTAssertTrue(text.hasSuffix("data: [DONE]\n\n"), "stream does not end with [DONE]: \(text.suffix(80))", file: file, line: line)
        var parts = text.components(separatedBy: "\n\n")
        XCTAssertEqual(parts.removeLast(), "", file: file, line: line)
        for part in parts { XCTAssertTrue(part.hasPrefix("data: ") && !part.contains("\n"), "bad event \(part.debugDescription)", file: file, line: line) }
        return parts.map { String($0.dropFirst(6)) }
    }

    private func json(_ event: String) -> JSONValue { (try? JSONParser.parse(Array(event.utf8))) ?? .null }

    func testStreamsOneChunkPerTokenThenFinishThenDone() async throws {
        let service = try await InferenceService.makeReady()
        let answer = await service.complete(#"{"prompt":"x","max_tokens":3,"stream":true}"#)
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.headers["Content-Type"], "text/event-stream; charset=utf-8")
        let events = events(answer)
        XCTAssertEqual(events.count, 5, "\(events)")
        let chunks = events.dropLast().map(json)
        XCTAssertEqual(chunks.map { $0["choices"]?[0]?["text"]?.stringValue }, ["a", "b", "c", ""])
        XCTAssertEqual(chunks.map { $0["choices"]?[0]?["finish_reason"] }, [.null, .null, .null, "length"])
        let ids = Set(chunks.compactMap { $0["id"]?.stringValue })
        XCTAssertEqual(ids.count, 1, "every chunk has the same id")
        for chunk in chunks {
            XCTAssertEqual(chunk["object"]?.stringValue, "text_completion")
            XCTAssertNil(chunk["usage"], "usage only with include_usage")
        }
        // The exact bytes of one event: compact JSON, keys in OpenAI's order.
        XCTAssertTrue(events[0].hasPrefix(#"{"id":"cmpl-"#), events[0])
        XCTAssertTrue(events[0].hasSuffix(#","model":"tiny","system_fingerprint":"fp_gptneo_server","choices":[{"text":"a","index":0,"logprobs":null,"finish_reason":null}]}"#), events[0])
        XCTAssertEqual(events.last, "[DONE]")
    }

    func testIncludeUsageAddsNullUsageAndAFinalUsageChunk() async throws {
        let service = try await InferenceService.makeReady()
        let answer = await service.complete(#"{"prompt":"ab","max_tokens":2,"n":2,"stream":true,"stream_options":{"include_usage":true}}"#)
        let chunks = events(answer).dropLast().map(json)
        for chunk in chunks.dropLast() { XCTAssertEqual(chunk["usage"], .null, "\(chunk.encodedString)") }
        let last = try XCTUnwrap(chunks.last)
        XCTAssertEqual(last["choices"], .array([]))
        XCTAssertEqual(last["usage"]?["prompt_tokens"]?.intValue, 2)
        XCTAssertEqual(last["usage"]?["completion_tokens"]?.intValue, 4)
        XCTAssertEqual(last["usage"]?["total_tokens"]?.intValue, 6)
        let finished = chunks.filter { $0["choices"]?[0]?["finish_reason"]?.stringValue != nil }.compactMap { $0["choices"]?[0]?["index"]?.intValue }
        XCTAssertEqual(finished.sorted(), [0, 1])
    }

    func testStreamingEchoAndLogprobsMatchTheNonStreamingOffsets() async throws {
        let service = try await InferenceService.makeReady()
        let answer = await service.complete(#"{"prompt":["Hi","ab"],"max_tokens":2,"stream":true,"echo":true,"logprobs":1}"#)
        let chunks = events(answer).dropLast().map(json)
        var texts: [Int: String] = [:]
        var offsets: [Int: [Int]] = [:]
        var tokens: [Int: [String]] = [:]
        for chunk in chunks {
            guard let choice = chunk["choices"]?[0], let index = choice["index"]?.intValue else { continue }
            texts[index, default: ""] += choice["text"]?.stringValue ?? ""
            offsets[index, default: []] += choice["logprobs"]?["text_offset"]?.arrayValue?.compactMap(\.intValue) ?? []
            tokens[index, default: []] += choice["logprobs"]?["tokens"]?.arrayValue?.compactMap(\.stringValue) ?? []
        }
        XCTAssertEqual(texts, [0: "Hiab", 1: "abab"])
        XCTAssertEqual(offsets[0], [0, 1, 2, 3])
        XCTAssertEqual(tokens[0], ["H", "i", "a", "b"])
        XCTAssertEqual(tokens[1], ["a", "b", "a", "b"])
    }

    func testAnErrorMidStreamBecomesAnErrorEventThenDone() async throws {
        let backend = FakeBackend()
        let service = try await InferenceService.makeReady(backend: backend)
        backend.streamError = BatcherError.shuttingDown
        let answer = await service.complete(#"{"prompt":"x","max_tokens":3,"stream":true}"#)
        let events = events(answer)
        XCTAssertEqual(events.count, 3, "\(events)")
        XCTAssertEqual(json(events[1])["error"]?["code"]?.stringValue, "unavailable")
    }

    func testErrorsBeforeTheFirstByteAreOrdinaryResponses() async throws {
        let backend = FakeBackend()
        let service = try await InferenceService.makeReady(backend: backend)
        backend.submitError = BatcherError.overloaded
        let answer = await service.complete(#"{"prompt":"x","stream":true}"#)
        XCTAssertEqual(answer.status, 429)
        XCTAssertEqual(answer.headers["Retry-After"], "1")
    }

    func testAClientThatGoesAwayStopsTheStream() async throws {
        struct Gone: Error {}
        final class FailingWriter: HTTPBodyWriter, @unchecked Sendable {
            var writes = 0
            func write(_ bytes: [UInt8]) async throws { writes += 1; if writes > 1 { throw Gone() } }
        }
        let service = try await InferenceService.makeReady()
        let response = await service.handle(.init(method: "POST", target: "/v1/completions", headers: [:],
                                                  body: Array(#"{"prompt":"x","max_tokens":10,"stream":true}"#.utf8), requestID: "r"))
        guard case .stream(let produce) = response.body else { return XCTFail("not streamed") }
        let writer = FailingWriter()
        do { try await produce(writer); XCTFail("the write error was swallowed") } catch { XCTAssertTrue(error is Gone, "\(error)") }
        XCTAssertEqual(writer.writes, 2, "no writes after the client went away")
    }

    /// A client that leaves mid-stream must cancel every prompt's generation at once, not when the
    /// response is released, for one prompt as for several.
    func testAClientThatGoesAwayCancelsEveryPromptsGeneration() async throws {
        struct Gone: Error {}
        final class FailingWriter: HTTPBodyWriter, @unchecked Sendable {
            func write(_ bytes: [UInt8]) async throws { throw Gone() }
        }
        for (prompt, count) in [(#""x""#, 1), (#"["x","y","z"]"#, 3)] {
            let backend = FakeBackend()
            let service = try await InferenceService.makeReady(backend: backend)
            backend.keepsStreamsOpen = true  // after the readiness check, which runs a generation to its end
            let body = #"{"prompt":\#(prompt),"max_tokens":5,"stream":true}"#
            let response = await service.handle(.init(method: "POST", target: "/v1/completions", headers: [:],
                                                      body: Array(body.utf8), requestID: "r"))
            guard case .stream(let produce) = response.body else { return XCTFail("not streamed") }
            do { try await produce(FailingWriter()); XCTFail("the write error was swallowed") } catch { XCTAssertTrue(error is Gone, "\(error)") }
            XCTAssertEqual(backend.submitted.count, count)
            let deadline = ContinuousClock.now + .seconds(5)
            while backend.cancelledStreams < count && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            XCTAssertEqual(backend.cancelledStreams, count, "\(count) prompt(s): not every generation was cancelled")
        }
    }

    /// A stream that stays open keeps the response open; it ends only when the client leaves.
    func testTheResponseWaitsForAnOpenGeneration() async throws {
        final class CountingWriter: HTTPBodyWriter, @unchecked Sendable {
            let lock = NSLock()
            var writes = 0
            func write(_ bytes: [UInt8]) async throws { lock.withLock { writes += 1 } }
        }
        let backend = FakeBackend()
        let service = try await InferenceService.makeReady(backend: backend)
        backend.keepsStreamsOpen = true
        let response = await service.handle(.init(method: "POST", target: "/v1/completions", headers: [:],
                                                  body: Array(#"{"prompt":"x","max_tokens":3,"stream":true}"#.utf8), requestID: "r"))
        guard case .stream(let produce) = response.body else { return XCTFail("not streamed") }
        let writer = CountingWriter()
        let task = Task { try await produce(writer) }
        let deadline = ContinuousClock.now + .seconds(5)
        while writer.lock.withLock({ writer.writes }) < 4 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        try await Task.sleep(for: .milliseconds(50))
        // Three tokens and the finish event; no usage chunk and no [DONE] while the generation runs.
        XCTAssertEqual(writer.lock.withLock { writer.writes }, 4)
        task.cancel()
        _ = await task.result
        let cancelDeadline = ContinuousClock.now + .seconds(5)
        while backend.cancelledStreams < 1 && ContinuousClock.now < cancelDeadline { try await Task.sleep(for: .milliseconds(5)) }
        XCTAssertEqual(backend.cancelledStreams, 1, "cancelling the response did not cancel the generation")
    }
}

