import Foundation
import XCTest
@testable import Batcher

// MARK: - Gathering a request's events

struct ChoiceResult: Equatable {
    var tokens: [Int] = []
    var text = ""
    var logprobs: [TokenLogprob] = []
    var finishReason: FinishReason?
}

struct Completion {
    var promptTokens: [Int]?
    var promptLogprobs: [TokenLogprob?] = []
    var choices: [Int: ChoiceResult] = [:]
    var usage: (prompt: Int, completion: Int)?
    var eventsAfterUsage = 0

    var only: ChoiceResult { choices[0] ?? ChoiceResult() }
}

func collect(_ stream: AsyncThrowingStream<GenerationEvent, Error>) async throws -> Completion {
    var completion = Completion()
    for try await event in stream {
        if completion.usage != nil { completion.eventsAfterUsage += 1 }
        switch event {
        case let .prompt(tokens, logprobs):
            completion.promptTokens = tokens
            completion.promptLogprobs = logprobs
        case let .token(choice, tokenID, text, logprob):
            completion.choices[choice, default: ChoiceResult()].tokens.append(tokenID)
            completion.choices[choice, default: ChoiceResult()].text += text
            if let logprob { completion.choices[choice, default: ChoiceResult()].logprobs.append(logprob) }
        case let .finished(choice, reason, text):
            XCTAssertNil(completion.choices[choice]?.finishReason, "choice \(choice) finished twice")
            completion.choices[choice, default: ChoiceResult()].finishReason = reason
            completion.choices[choice, default: ChoiceResult()].text += text
        case let .usage(prompt, completionTokens):
            completion.usage = (prompt, completionTokens)
        }
    }
    return completion
}

func request(_ prompt: [Int], configure: (inout GenerationParameters) -> Void = { _ in }) -> GenerationRequest {
    var parameters = GenerationParameters()
    parameters.temperature = 0
    configure(&parameters)
    return GenerationRequest(promptTokens: prompt, parameters: parameters)
}

/// Waits until `condition` holds, failing after `timeout` seconds.
func eventually(timeout: TimeInterval = 10, _ what: String, _ condition: () -> Bool) async {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        if Date() > deadline { XCTFail("timed out waiting for: \(what)"); return }
        try? await Task.sleep(nanoseconds: 2_000_000)
    }
}

/// Runs `body` and throws if it takes longer than `seconds` (the test then reports instead of hanging).
func withTimeout<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask { try await Task.sleep(nanoseconds: UInt64(seconds * 1e9)); return nil }
        guard let first = try await group.next(), let value = first else {
            group.cancelAll()
            throw TimeoutError(seconds: seconds)
        }
        group.cancelAll()
        return value
    }
}

struct TimeoutError: Error, CustomStringConvertible {
    let seconds: Double
    var description: String { "timed out after \(seconds) s" }
}

/// The first few differences between two sequences, for failure messages.
func firstMismatches<T: Equatable>(_ a: [T], _ b: [T], limit: Int = 5) -> String {
    var lines: [String] = []
    for index in 0..<max(a.count, b.count) where lines.count < limit {
        let left = index < a.count ? "\(a[index])" : "—"
        let right = index < b.count ? "\(b[index])" : "—"
        if left != right || (index < a.count && index < b.count && a[index] != b[index]) {
            lines.append("[\(index)] \(left) vs \(right)")
        }
    }
    return lines.isEmpty ? "equal" : "counts \(a.count) vs \(b.count); " + lines.joined(separator: "; ")
}
