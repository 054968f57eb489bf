// MARK: - Request line (RFC 9112 §3)

/// `method SP request-target SP HTTP-version`, validated.
struct RequestLine: Sendable {
    var method: String
    var target: String
    var version: HTTPVersion
}

/// Parses a request line without its CRLF. Exactly two single spaces separate the three parts.
func parseRequestLine(_ line: ArraySlice<UInt8>) -> Result<RequestLine, HTTPParseError> {
    let parts = line.split(separator: .space, maxSplits: 3, omittingEmptySubsequences: false)
    guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty, !parts[2].isEmpty else {
        return .failure(.malformedRequestLine)
    }
    let (methodBytes, targetBytes, versionBytes) = (parts[0], parts[1], parts[2])
    guard methodBytes.allSatisfy(isTokenByte) else { return .failure(.invalidMethod) }
    let version: HTTPVersion
    switch parseVersion(versionBytes) {
    case .success(let parsed): version = parsed
    case .failure(let error): return .failure(error)
    }
    // Request targets are visible ASCII only: no controls, no spaces, no raw non-ASCII.
    guard targetBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return .failure(.invalidTarget) }
    let method = String(decoding: methodBytes, as: UTF8.self)
    guard let target = originForm(of: targetBytes, method: method) else { return .failure(.invalidTarget) }
    return .success(RequestLine(method: method, target: target, version: version))
}

/// `HTTP/1.0` and `HTTP/1.1` as such; `HTTP/1.x` (x ≥ 2) served as 1.1 (RFC 9110 §6.2); any other
/// well-formed `HTTP/d.d` is 505; anything else is malformed.
private func parseVersion(_ bytes: ArraySlice<UInt8>) -> Result<HTTPVersion, HTTPParseError> {
    let prefix = Array("HTTP/".utf8)
    let b = Array(bytes)
    guard b.count == 8, Array(b[0..<5]) == prefix, b[6] == UInt8(ascii: "."),
          let major = digitValue(b[5]), let minor = digitValue(b[7])
    else { return .failure(.malformedRequestLine) }
    guard major == 1 else { return .failure(.unsupportedVersion) }
    return .success(minor == 0 ? .http10 : .http11)
}

private func digitValue(_ byte: UInt8) -> Int? {
    byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte - UInt8(ascii: "0")) : nil
}

/// The origin-form of a target: as is when it starts with `/`; `*` for `OPTIONS`; an
/// absolute-form `http(s)://authority/path?query` reduced to `/path?query` (RFC 9112 §3.2.2).
private func originForm(of bytes: ArraySlice<UInt8>, method: String) -> String? {
    let text = String(decoding: bytes, as: UTF8.self)
    if bytes.first == UInt8(ascii: "/") { return text }
    if text == "*" { return method == "OPTIONS" ? text : nil }
    let lower = text.lowercased()
    for scheme in ["http://", "https://"] where lower.hasPrefix(scheme) {
        let rest = text.dropFirst(scheme.count)
        guard let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) else {
            return rest.isEmpty ? nil : "/"
        }
        guard authorityEnd != rest.startIndex else { return nil }  // empty authority
        let pathAndQuery = rest[authorityEnd...]
        return pathAndQuery.first == "?" ? "/" + pathAndQuery : String(pathAndQuery)
    }
    return nil
}

// MARK: - Header fields (RFC 9110 §5, RFC 9112 §5)

/// The header fields that change how a message is framed or answered.
enum FieldKind {
    case host, contentLength, transferEncoding, contentEncoding, connection, expect, other
}

/// Parses `name ":" OWS value OWS` (line without CRLF).
func parseHeaderLine(_ line: ArraySlice<UInt8>) -> Result<(name: String, value: String, kind: FieldKind), HTTPParseError> {
    guard let first = line.first, first != .space, first != .tab else { return .failure(.obsFold) }
    guard let colon = line.firstIndex(of: .colon) else { return .failure(.invalidHeaderName) }
    let name = line[line.startIndex..<colon]
    guard let last = name.last else { return .failure(.invalidHeaderName) }
    if last == .space || last == .tab { return .failure(.whitespaceBeforeColon) }
    guard name.allSatisfy(isTokenByte) else { return .failure(.invalidHeaderName) }
    var value = line[(colon + 1)...]
    while let b = value.first, b == .space || b == .tab { value = value.dropFirst() }
    while let b = value.last, b == .space || b == .tab { value = value.dropLast() }
    for byte in value where byte < 0x20 && byte != .tab || byte == 0x7F {
        return .failure(byte == .cr ? .bareCR : .invalidHeaderValue)
    }
    let kind = fieldKind(name)
    return .success((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self), kind))
}

private func fieldKind(_ name: ArraySlice<UInt8>) -> FieldKind {
    switch name.count {
    case 4 where equalsLowercase(name, "host"): .host
    case 6 where equalsLowercase(name, "expect"): .expect
    case 10 where equalsLowercase(name, "connection"): .connection
    case 14 where equalsLowercase(name, "content-length"): .contentLength
    case 16 where equalsLowercase(name, "content-encoding"): .contentEncoding
    case 17 where equalsLowercase(name, "transfer-encoding"): .transferEncoding
    default: .other
    }
}

private func equalsLowercase(_ bytes: ArraySlice<UInt8>, _ lowercase: StaticString) -> Bool {
    guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
    let expected = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
    return zip(bytes, expected).allSatisfy { asciiLowercase($0) == $1 }
}

/// tchar (RFC 9110 §5.6.2): the bytes of methods and field names.
@inline(__always)
func isTokenByte(_ byte: UInt8) -> Bool { tokenTable[Int(byte)] }

private let tokenTable: [Bool] = (0..<256).map { value in
    let byte = UInt8(value)
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"):
        return true
    default:
        return "!#$%&'*+-.^_`|~".utf8.contains(byte)
    }
}

// MARK: - Head semantics

/// Header fields gathered while the head arrives, with the framing-relevant ones noted.
struct PendingHead {
    var headers = HTTPHeaders()
    var hosts: [String] = []
    var contentLengths: [String] = []
    var transferEncodings: [String] = []
    var contentEncodings: [String] = []
    var connectionValues: [String] = []
    var expectValues: [String] = []

    mutating func add(_ field: (name: String, value: String, kind: FieldKind)) {
        headers.add(name: field.name, value: field.value)
        switch field.kind {
        case .host: hosts.append(field.value)
        case .contentLength: contentLengths.append(field.value)
        case .transferEncoding: transferEncodings.append(field.value)
        case .contentEncoding: contentEncodings.append(field.value)
        case .connection: connectionValues.append(field.value)
        case .expect: expectValues.append(field.value)
        case .other: break
        }
    }
}

/// Applies the message-level rules: Host, body framing, content coding, persistence, expectations.
func makeHead(_ line: RequestLine, _ fields: PendingHead, limits: HTTPParserLimits) -> Result<HTTPRequestHead, HTTPParseError> {
    if fields.hosts.count > 1 { return .failure(.duplicateHost) }
    if fields.hosts.isEmpty && line.version == .http11 { return .failure(.missingHost) }
    if let host = fields.hosts.first, !isValidHostField(host) { return .failure(.invalidHost) }

    var framing = HTTPBodyFraming.none
    if !fields.transferEncodings.isEmpty {
        if !fields.contentLengths.isEmpty { return .failure(.contentLengthWithTransferEncoding) }
        if line.version == .http10 { return .failure(.transferEncodingInHTTP10) }
        // Only `chunked`, once: other codings are not supported, and `chunked` must be final.
        let codings = listElements(fields.transferEncodings).map { $0.lowercased() }
        guard codings == ["chunked"] else { return .failure(.unsupportedTransferEncoding) }
        framing = .chunked
    } else if !fields.contentLengths.isEmpty {
        var length: Int?
        for element in fields.contentLengths.flatMap({ $0.split(separator: ",", omittingEmptySubsequences: false) }) {
            let trimmed = element.trimmingOWS()
            // 18 digits cannot overflow `Int`.
            guard !trimmed.isEmpty, trimmed.count <= 18, trimmed.utf8.allSatisfy({ digitValue($0) != nil }),
                  let value = Int(trimmed)
            else { return .failure(.invalidContentLength) }
            if let length, length != value { return .failure(.conflictingContentLength) }
            length = value
        }
        guard let length else { return .failure(.invalidContentLength) }
        if length > limits.maxBodyBytes { return .failure(.bodyTooLarge) }
        framing = .length(length)
    }

    let tokens = Set(listElements(fields.connectionValues).map { $0.lowercased() })
    let keepAlive = tokens.contains("close") ? false : (line.version == .http11 || tokens.contains("keep-alive"))
    let hasBody = framing == .chunked || (framing != .none && framing != .length(0))
    // Bodies are handed over as received: a coded (compressed) one would reach the handler as
    // garbage, so it is refused; `identity` is no coding at all.
    if hasBody && listElements(fields.contentEncodings).contains(where: { $0.lowercased() != "identity" }) {
        return .failure(.unsupportedContentEncoding)
    }
    // HTTP/1.0 predates expectations: there they are ignored (RFC 9110 §10.1.1).
    let expectations = line.version == .http11 ? listElements(fields.expectValues).map { $0.lowercased() } : []
    if expectations.contains(where: { $0 != "100-continue" }) { return .failure(.unsupportedExpectation) }
    let expectsContinue = hasBody && expectations.contains("100-continue")

    return .success(HTTPRequestHead(
        method: line.method, target: line.target, version: line.version, headers: fields.headers,
        keepAlive: keepAlive, expectsContinue: expectsContinue, framing: framing
    ))
}

/// `host [":" port]` as RFC 3986 defines them: an IP literal in brackets, or a reg-name (which
/// covers IPv4 and DNS names: unreserved, sub-delims, percent-encoded octets); a port of at most
/// five digits. Empty is allowed (RFC 9112 §3.2: a target without authority). No userinfo.
func isValidHostField(_ value: String) -> Bool {
    let bytes = Array(value.utf8)
    var index = 0
    if bytes.first == UInt8(ascii: "[") {
        guard let close = bytes.firstIndex(of: UInt8(ascii: "]")), close > 1 else { return false }
        guard bytes[1..<close].allSatisfy({ isUnreservedOrSubDelim($0) || $0 == .colon }) else { return false }
        index = close + 1
    } else {
        while index < bytes.count, bytes[index] != .colon {
            if bytes[index] == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, hexValue(bytes[index + 1]) != nil, hexValue(bytes[index + 2]) != nil else { return false }
                index += 3
                continue
            }
            guard isUnreservedOrSubDelim(bytes[index]) else { return false }
            index += 1
        }
    }
    guard index < bytes.count else { return true }
    guard bytes[index] == .colon else { return false }
    let port = bytes[(index + 1)...]
    return port.count <= 5 && port.allSatisfy { digitValue($0) != nil }
}

private func isUnreservedOrSubDelim(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"):
        return true
    default:
        return "-._~!$&'()*+,;=".utf8.contains(byte)
    }
}

/// The non-empty elements of comma-separated list fields, OWS trimmed.
func listElements(_ values: [String]) -> [String] {
    values.flatMap { $0.split(separator: ",") }.map { $0.trimmingOWS() }.filter { !$0.isEmpty }
}

extension StringProtocol {
    func trimmingOWS() -> String {
        var slice = Substring(self)
        while let c = slice.first, c == " " || c == "\t" { slice = slice.dropFirst() }
        while let c = slice.last, c == " " || c == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}

// MARK: - Chunked framing (RFC 9112 §7.1)

/// Parses `chunk-size [chunk-ext]` (line without CRLF) into the chunk size.
func parseChunkSizeLine(_ line: ArraySlice<UInt8>, limits: HTTPParserLimits) -> Result<Int, HTTPParseError> {
    var size: UInt64 = 0
    var digits = 0
    var index = line.startIndex
    while index < line.endIndex, let nibble = hexValue(line[index]) {
        digits += 1
        guard digits <= limits.maxChunkSizeDigits else { return .failure(.invalidChunkSize) }
        size = size << 4 | UInt64(nibble)
        index += 1
    }
    guard digits > 0, size <= UInt64(Int.max) else { return .failure(.invalidChunkSize) }
    // Extensions: BWS ";" ... ; they carry nothing we use, but must be well formed text.
    let rest = line[index...]
    if !rest.isEmpty {
        let startsWithSpace = rest.first == .space || rest.first == .tab
        guard let semicolon = rest.firstIndex(where: { $0 != .space && $0 != .tab }), line[semicolon] == UInt8(ascii: ";")
        else { return .failure(startsWithSpace ? .invalidChunkExtension : .invalidChunkSize) }
        for byte in rest where byte < 0x20 && byte != .tab || byte == 0x7F {
            return .failure(byte == .cr ? .bareCR : .invalidChunkExtension)
        }
    }
    return .success(Int(size))
}

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}
