import Foundation

// MARK: - JSON values

/// A JSON document as parsed from a request or built for a response.
///
/// We parse JSON ourselves instead of using `JSONSerialization`/`Codable` because the API must tell
/// a boolean from a number, an integer from `1.5`, and report *which field* is wrong; Foundation
/// bridges all of those through `NSNumber`. Objects keep their key order so responses are stable.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's source text is kept so integers beyond `Double` precision stay exact.
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The value of `key` when this is an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    /// Shorthand for building responses.
    public static func int(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }
    public static func double(_ value: Double) -> JSONValue { .number(JSONNumber(value)) }
    public static func optional(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }

    /// A name for error messages ("expected an integer, got a string").
    public var kindDescription: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// A JSON number: its text as written, and its value as `Double`.
public struct JSONNumber: Sendable, Equatable {
    public let text: String
    public init(text: String) { self.text = text }
    public init(_ value: Int) { text = String(value) }
    /// Non-finite values have no JSON form; they are clamped like vLLM clamps `-inf` logprobs.
    public init(_ value: Double) {
        if value.isNaN { text = "0" }
        else if value == .infinity { text = String(Double.greatestFiniteMagnitude) }
        else if value == -.infinity { text = "-9999.0" }
        else { text = value.description }
    }
    public var doubleValue: Double { Double(text) ?? .nan }
    /// The value when it is exactly an integer: an integer literal that fits `Int`, or a number
    /// written with a fraction or an exponent (`2.0`, `2e1`) whose decimal value is a whole number
    /// no larger than 2^53 in magnitude, the range in which JSON parsers that read numbers as
    /// doubles agree on it. `1.5`, `1e-400`, `1e300` and `9007199254740993.0` are nil.
    public var intValue: Int? {
        if let exact = Int(text) { return exact }
        return Self.wholeValue(text)
    }

    /// A short prefix of the text for error messages (a request may send a megabyte of digits).
    public var quotedText: String { quotedPrefix(text) }

    private static let exactDoubleLimit = 1 << 53

    /// Reads `-? digits (. digits)? ([eE] [+-]? digits)?` exactly: digits × 10^exponent.
    private static func wholeValue(_ text: String) -> Int? {
        var utf8 = Substring(text).utf8[...]
        let negative = utf8.first == UInt8(ascii: "-")
        if negative { utf8 = utf8.dropFirst() }
        var digits: [UInt8] = []
        var exponent = 0
        var seenPoint = false
        while let byte = utf8.first, byte != UInt8(ascii: "e"), byte != UInt8(ascii: "E") {
            utf8 = utf8.dropFirst()
            if byte == UInt8(ascii: ".") { seenPoint = true; continue }
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            if seenPoint { exponent -= 1 }
            digits.append(byte - UInt8(ascii: "0"))
        }
        if !utf8.isEmpty {
            // A written exponent beyond a few digits is far outside any integer field's range.
            guard let written = Int(String(decoding: utf8.dropFirst(), as: UTF8.self)), abs(written) < 10_000 else { return nil }
            exponent += written
        }
        while digits.first == 0 { digits.removeFirst() }
        while digits.last == 0 { digits.removeLast(); exponent += 1 }
        if digits.isEmpty { return 0 }
        guard exponent >= 0, digits.count + exponent <= 16 else { return nil }
        var value = 0
        for digit in digits { value = value * 10 + Int(digit) }
        for _ in 0..<exponent { value *= 10 }
        guard value <= exactDoubleLimit else { return nil }
        return negative ? -value : value
    }
}

/// At most 32 characters of a client's value, for error messages and logs.
func quotedPrefix(_ value: String, limit: Int = 32) -> String {
    value.count <= limit ? value : String(value.prefix(limit)) + "…"
}

/// An object with its keys in insertion order; a repeated key keeps its last value (as Python does).
public struct JSONObject: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    public private(set) var keys: [String] = []
    private var values: [String: JSONValue] = [:]

    public init() {}
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        for (key, value) in elements { self[key] = value }
    }

    public subscript(key: String) -> JSONValue? {
        get { values[key] }
        set {
            if let newValue {
                if values.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if values.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    public var entries: [(key: String, value: JSONValue)] { keys.map { ($0, values[$0]!) } }
    public var count: Int { keys.count }
}
