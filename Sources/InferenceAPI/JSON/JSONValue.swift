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
    /// The value when it is a whole number that fits `Int` (`2`, `2.0`, `2e0`), else nil.
    public var intValue: Int? {
        if let exact = Int(text) { return exact }
        guard let double = Double(text), double.rounded() == double, abs(double) < 9.2e18 else { return nil }
        return Int(double)
    }
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
