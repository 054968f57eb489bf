#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Incremental request parser

/// A pure, incremental HTTP/1.1 request parser (RFC 9112). Feed it any split of the input: the
/// events are the same whether the bytes come all at once or one at a time. It keeps parsing
/// after a complete message, so pipelined requests come out in order; after an error it ignores
/// everything.
package struct HTTPRequestParser: Sendable {
    private enum State: Sendable {
        /// Reading the request line (empty lines before it are skipped, RFC 9112 §2.2).
        case requestLine
        /// Reading header lines until the empty line.
        case headerLines(RequestLine)
        /// `Content-Length` body: bytes still to come.
        case fixedBody(remaining: Int)
        /// Reading a `chunk-size [extensions]` line.
        case chunkSizeLine
        /// Inside chunk data: bytes still to come.
        case chunkData(remaining: Int)
        /// After chunk data: expecting CR (`sawCR == false`) then LF.
        case chunkDataEnd(sawCR: Bool)
        /// Reading trailer lines after the last chunk until the empty line.
        case trailerLines
        case failed(HTTPParseError)
    }

    package let limits: HTTPParserLimits
    private var state: State = .requestLine
    /// The current line's bytes so far, terminator included once seen.
    private var line: [UInt8] = []
    /// Header and trailer bytes of the current message (CRLFs included), against `maxHeaderBytes`.
    private var headerBytes = 0
    private var headerCount = 0
    private var pendingHead: PendingHead?
    private var head: HTTPRequestHead?
    /// The request line of the message under way, kept after a failure for the access log.
    private var requestLine: RequestLine?
    private var body: [UInt8] = []

    package init(limits: HTTPParserLimits = HTTPParserLimits()) {
        self.limits = limits
        line.reserveCapacity(256)
    }

    /// Where the parser is within the current message.
    package var phase: HTTPParserPhase {
        switch state {
        case .requestLine: line.isEmpty ? .idle : .head
        case .headerLines: .head
        case .fixedBody, .chunkSizeLine, .chunkData, .chunkDataEnd, .trailerLines: .body
        case .failed: .failed
        }
    }

    /// Method and target of the message under way (or of the one that failed), once its request
    /// line has been read: lets an error answer be logged against the request it refused.
    package var currentRequest: (method: String, target: String)? {
        requestLine.map { ($0.method, $0.target) }
    }

    // MARK: Feeding

    /// Parses `bytes`, appending what they complete to `events`.
    package mutating func feed(_ bytes: UnsafeRawBufferPointer, into events: inout [HTTPParserEvent]) {
        var index = 0
        while index < bytes.count {
            switch state {
            case .failed:
                return
            case .requestLine, .headerLines, .chunkSizeLine, .trailerLines:
                let (consumed, complete) = appendLine(bytes, from: index)
                index += consumed
                if let error = lineLimitError(complete: complete) {
                    fail(error, &events)
                } else if complete {
                    lineCompleted(&events)
                    line.removeAll(keepingCapacity: true)
                }
            case .fixedBody(let remaining):
                let take = min(remaining, bytes.count - index)
                body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<index + take]))
                index += take
                if take == remaining {
                    finishMessage(&events)
                } else {
                    state = .fixedBody(remaining: remaining - take)
                }
            case .chunkData(let remaining):
                let take = min(remaining, bytes.count - index)
                body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<index + take]))
                index += take
                state = take == remaining ? .chunkDataEnd(sawCR: false) : .chunkData(remaining: remaining - take)
            case .chunkDataEnd(let sawCR):
                let byte = bytes[index]
                index += 1
                if !sawCR {
                    if byte == .cr { state = .chunkDataEnd(sawCR: true) }
                    else { fail(byte == .lf ? .bareLF : .missingChunkCRLF, &events) }
                } else {
                    if byte == .lf { state = .chunkSizeLine } else { fail(.missingChunkCRLF, &events) }
                }
            }
        }
    }

    /// Convenience for tests and the fuzzer.
    package mutating func feed(_ bytes: [UInt8]) -> [HTTPParserEvent] {
        var events: [HTTPParserEvent] = []
        bytes.withUnsafeBytes { feed($0, into: &events) }
        return events
    }

    // MARK: Lines

    /// Appends input up to and including the next LF; returns the bytes taken and whether the line is complete.
    private mutating func appendLine(_ bytes: UnsafeRawBufferPointer, from index: Int) -> (Int, Bool) {
        let base = bytes.baseAddress! + index
        let available = bytes.count - index
        if let found = memchr(base, Int32(UInt8.lf), available) {
            let length = base.distance(to: UnsafeRawPointer(found)) + 1
            line.append(contentsOf: UnsafeRawBufferPointer(start: base, count: length))
            return (length, true)
        }
        line.append(contentsOf: UnsafeRawBufferPointer(start: base, count: available))
        return (available, false)
    }

    /// The size limit the current line breaks, if any. Checked on every append and first on
    /// completion, so a long line fails the same way however it was split. `line` may end with
    /// CR LF (complete) or a CR that the next byte may complete, so one byte of slack is allowed
    /// until the line is complete.
    private func lineLimitError(complete: Bool) -> HTTPParseError? {
        let content = complete ? contentLength(of: line) : max(0, line.count - 1)
        switch state {
        case .requestLine:
            return content > limits.maxRequestLineBytes ? .requestLineTooLong : nil
        case .headerLines, .trailerLines:
            let total = complete ? line.count : content
            return headerBytes + total > limits.maxHeaderBytes ? .headerBlockTooLarge : nil
        case .chunkSizeLine:
            return content > limits.maxChunkLineBytes ? .chunkLineTooLong : nil
        default:
            return nil
        }
    }

    /// A complete line's length without its terminator (CRLF or a bare LF).
    private func contentLength(of line: [UInt8]) -> Int {
        line.count >= 2 && line[line.count - 2] == .cr ? line.count - 2 : line.count - 1
    }

    private mutating func lineCompleted(_ events: inout [HTTPParserEvent]) {
        guard line.count >= 2, line[line.count - 2] == .cr else { return fail(.bareLF, &events) }
        let content = line.count - 2
        switch state {
        case .requestLine:
            guard content > 0 else { return }  // empty line before a request: ignored
            switch parseRequestLine(line[0..<content]) {
            case .success(let requestLine):
                headerBytes = 0
                headerCount = 0
                pendingHead = PendingHead()
                self.requestLine = requestLine
                state = .headerLines(requestLine)
            case .failure(let error):
                fail(error, &events)
            }
        case .headerLines(let requestLine):
            headerBytes += line.count
            if content == 0 { return headCompleted(requestLine, &events) }
            headerCount += 1
            guard headerCount <= limits.maxHeaderCount else { return fail(.tooManyHeaders, &events) }
            switch parseHeaderLine(line[0..<content]) {
            case .success(let field): pendingHead!.add(field)
            case .failure(let error): fail(error, &events)
            }
        case .chunkSizeLine:
            switch parseChunkSizeLine(line[0..<content], limits: limits) {
            case .success(0):
                state = .trailerLines
            case .success(let size):
                guard size <= limits.maxBodyBytes - body.count else { return fail(.bodyTooLarge, &events) }
                state = .chunkData(remaining: size)
            case .failure(let error):
                fail(error, &events)
            }
        case .trailerLines:
            headerBytes += line.count
            if content == 0 { return finishMessage(&events) }
            headerCount += 1
            guard headerCount <= limits.maxHeaderCount else { return fail(.tooManyHeaders, &events) }
            // Trailers are validated like header fields, then dropped: none is allowed to
            // change how the request is handled (RFC 9110 §6.5.1).
            if case .failure(let error) = parseHeaderLine(line[0..<content]) { fail(error, &events) }
        default:
            preconditionFailure("line completed outside a line state")
        }
    }

    // MARK: Message boundaries

    private mutating func headCompleted(_ requestLine: RequestLine, _ events: inout [HTTPParserEvent]) {
        let fields = pendingHead!
        pendingHead = nil
        switch makeHead(requestLine, fields, limits: limits) {
        case .failure(let error):
            fail(error, &events)
        case .success(let parsed):
            head = parsed
            events.append(.head(parsed))
            body = []
            switch parsed.framing {
            case .none, .length(0):
                finishMessage(&events)
            case .length(let length):
                // Reserve what a client may claim only up to a point: memory follows the bytes
                // actually received, not a declared length.
                body.reserveCapacity(min(length, 64 * 1024))
                state = .fixedBody(remaining: length)
            case .chunked:
                state = .chunkSizeLine
            }
        }
    }

    private mutating func finishMessage(_ events: inout [HTTPParserEvent]) {
        events.append(.message(head!, body: body))
        head = nil
        requestLine = nil
        body = []
        state = .requestLine
    }

    private mutating func fail(_ error: HTTPParseError, _ events: inout [HTTPParserEvent]) {
        state = .failed(error)
        line = []
        body = []
        events.append(.error(error))
    }
}

// MARK: - Byte constants

extension UInt8 {
    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let colon = UInt8(ascii: ":")
}
