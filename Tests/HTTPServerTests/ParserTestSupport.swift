import XCTest
import HTTPServer

// MARK: - Feeding helpers

/// Parses `text` whole, and checks that every two-piece split and the one-byte-at-a-time feed give
/// the same events (the parser's split invariance), reporting the first offset that differs.
func parse(
    _ text: String, limits: HTTPParserLimits = HTTPParserLimits(), checkSplits: Bool = true,
    file: StaticString = #filePath, line: UInt = #line
) -> [HTTPParserEvent] {
    parse(Array(text.utf8), limits: limits, checkSplits: checkSplits, file: file, line: line)
}

func parse(
    _ bytes: [UInt8], limits: HTTPParserLimits = HTTPParserLimits(), checkSplits: Bool = true,
    file: StaticString = #filePath, line: UInt = #line
) -> [HTTPParserEvent] {
    var whole = HTTPRequestParser(limits: limits)
    let expected = whole.feed(bytes)
    guard checkSplits else { return expected }
    var bytewise = HTTPRequestParser(limits: limits)
    let oneByOne = bytes.flatMap { bytewise.feed([$0]) }
    XCTAssertEqual(oneByOne, expected, "one byte at a time differs from whole input", file: file, line: line)
    for offset in 0...bytes.count {
        var split = HTTPRequestParser(limits: limits)
        let events = split.feed(Array(bytes[..<offset])) + split.feed(Array(bytes[offset...]))
        if events != expected {
            XCTFail("split at offset \(offset) of \(bytes.count) differs:\n  whole: \(expected)\n  split: \(events)", file: file, line: line)
            break
        }
    }
    return expected
}

/// The single complete message of `events` (asserting there is exactly one and no error).
func singleMessage(_ events: [HTTPParserEvent], file: StaticString = #filePath, line: UInt = #line) -> (HTTPRequestHead, [UInt8])? {
    let messages = events.compactMap { event -> (HTTPRequestHead, [UInt8])? in
        if case .message(let head, let body) = event { return (head, body) }
        return nil
    }
    XCTAssertEqual(messages.count, 1, "expected one message, got \(events)", file: file, line: line)
    XCTAssertNil(firstError(events), "unexpected error in \(events)", file: file, line: line)
    return messages.first
}

func firstError(_ events: [HTTPParserEvent]) -> HTTPParseError? {
    for case .error(let error) in events { return error }
    return nil
}

/// Asserts `text` fails with exactly `error`, as the last event, and that it maps to `status`.
func assertRejects(
    _ text: String, with error: HTTPParseError, status: Int = 400, limits: HTTPParserLimits = HTTPParserLimits(),
    file: StaticString = #filePath, line: UInt = #line
) {
    let events = parse(text, limits: limits, file: file, line: line)
    XCTAssertEqual(firstError(events), error, "events: \(events)", file: file, line: line)
    if case .error = events.last {} else { XCTFail("error is not the last event: \(events)", file: file, line: line) }
    XCTAssertEqual(error.status, status, file: file, line: line)
}
