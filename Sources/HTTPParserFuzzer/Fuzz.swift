import HTTPServer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - libFuzzer entry point
// Built with `swift build --sanitize fuzzer --sanitize address --product HTTPParserFuzzer`, libFuzzer
// supplies `main` and calls this for every input. Besides "no crash, no memory error", it checks
// the parser's central property: the events do not depend on how the input is split.

/// Small limits so that random inputs reach every limit path.
private let limits: HTTPParserLimits = {
    var limits = HTTPParserLimits()
    limits.maxRequestLineBytes = 64
    limits.maxHeaderBytes = 256
    limits.maxHeaderCount = 8
    limits.maxBodyBytes = 512
    limits.maxChunkLineBytes = 48
    return limits
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    checkParser(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

func checkParser(_ input: [UInt8]) {
    var whole = HTTPRequestParser(limits: limits)
    let expected = whole.feed(input)
    checkInvariants(expected)

    // Pieces of pseudo-random sizes (seeded by the input, so a crash reproduces).
    var seed = UInt64(truncatingIfNeeded: input.count) &* 0x9E37_79B9_7F4A_7C15 | 1
    for byte in input.prefix(16) { seed = (seed ^ UInt64(byte)) &* 0x100_0000_01B3 }
    var pieces = HTTPRequestParser(limits: limits)
    var events: [HTTPParserEvent] = []
    var index = 0
    while index < input.count {
        seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        let length = min(input.count - index, 1 + Int(seed >> 59))
        events += pieces.feed(Array(input[index..<index + length]))
        index += length
    }
    compare(expected, events, "random pieces")
    for case .message(let head, let body) in expected { checkRoundTrip(head, body) }

    // One byte at a time (bounded: quadratic-looking work is fine for short inputs only).
    if input.count <= 4096 {
        var bytewise = HTTPRequestParser(limits: limits)
        var events: [HTTPParserEvent] = []
        for byte in input { events += bytewise.feed([byte]) }
        compare(expected, events, "one byte at a time")
    }
}

/// A parsed message written back canonically (origin-form, HTTP/1.x, trimmed fields,
/// `Content-Length` framing) parses to the same method, target, version, fields and body.
private func checkRoundTrip(_ head: HTTPRequestHead, _ body: [UInt8]) {
    let framing = ["content-length", "transfer-encoding"]
    var text = "\(head.method) \(head.target) \(head.version)\r\n"
    var fields: [String] = []
    for (name, value) in head.headers where !framing.contains(name.lowercased()) {
        text += "\(name): \(value)\r\n"
        fields.append("\(name.lowercased())=\(value)")
    }
    if !body.isEmpty { text += "Content-Length: \(body.count)\r\n" }
    var parser = HTTPRequestParser()
    let events = parser.feed(Array((text + "\r\n").utf8) + body)
    guard events.count == 2, case .message(let again, let bodyAgain) = events[1] else {
        fail("round trip of \(head) did not parse: \(events)")
    }
    let fieldsAgain = again.headers.filter { !framing.contains($0.name.lowercased()) }.map { "\($0.name.lowercased())=\($0.value)" }
    if again.method != head.method || again.target != head.target || again.version != head.version
        || fieldsAgain != fields || bodyAgain != body {
        fail("round trip changed the message:\n  first: \(head)\n  again: \(again)")
    }
}

private func compare(_ expected: [HTTPParserEvent], _ actual: [HTTPParserEvent], _ how: String) {
    guard expected != actual else { return }
    printError("split invariance broken (\(how)):\n  whole:  \(expected)\n  pieces: \(actual)\n")
    abort()
}

/// Structural promises: nothing after an error; every message follows its own head; bodies
/// respect the limit and the declared length.
private func checkInvariants(_ events: [HTTPParserEvent]) {
    var lastHead: HTTPRequestHead?
    for (position, event) in events.enumerated() {
        switch event {
        case .error:
            if position != events.count - 1 { fail("events after an error: \(events)") }
        case .head(let head):
            if lastHead != nil { fail("head without message: \(events)") }
            lastHead = head
        case .message(let head, let body):
            if head != lastHead { fail("message head differs from its head event: \(events)") }
            if body.count > limits.maxBodyBytes { fail("body over the limit: \(body.count)") }
            if case .length(let length) = head.framing, length != body.count { fail("body length \(body.count) != \(length)") }
            if head.framing == .none && !body.isEmpty { fail("body without framing") }
            lastHead = nil
        }
    }
}

private func fail(_ message: String) -> Never {
    printError(message + "\n")
    abort()
}

// MARK: - Replay entry point
// A normal build (no fuzzer runtime) links this as `main`: it replays the files given as
// arguments (a crash input, the seed corpus) through the same checks.

@_cdecl("HTTPParserFuzzer_main")
public func replayMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var count = 0
    for index in 1..<Int(argc) {
        let path = String(cString: argv[index]!)
        guard let file = fopen(path, "rb") else {
            printError("cannot open \(path)\n")
            return 1
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let read = fread(&buffer, 1, buffer.count, file)
            if read <= 0 { break }
            bytes += buffer[0..<read]
        }
        fclose(file)
        checkParser(bytes)
        count += 1
    }
    print("replayed \(count) inputs: split invariance and invariants hold")
    return 0
}

private func printError(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
