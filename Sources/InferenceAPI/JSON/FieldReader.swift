// MARK: - Typed access to request fields

/// Reads typed fields out of a request object and throws a 400 naming the field when a value has the
/// wrong type or range. `null` counts as absent, as in OpenAI's API; unknown fields are ignored.
struct FieldReader {
    let object: JSONObject

    init(body: [UInt8]) throws(APIError) {
        guard !body.isEmpty else { throw .badRequest("The request body is empty; expected a JSON object.", code: "invalid_json") }
        guard String(validating: body, as: UTF8.self) != nil else {
            throw .badRequest("The request body is not valid UTF-8.", code: "invalid_json")
        }
        let value: JSONValue
        do { value = try JSONParser.parse(body) } catch {
            throw .badRequest("The request body is not valid JSON: \(error.description).", code: "invalid_json")
        }
        guard case .object(let object) = value else {
            throw .badRequest("The request body must be a JSON object, got \(value.kindDescription).", code: "invalid_json")
        }
        self.object = object
    }

    /// The value, or nil when absent or null.
    func value(_ name: String) -> JSONValue? {
        guard let value = object[name], value != .null else { return nil }
        return value
    }

    func string(_ name: String) throws(APIError) -> String? {
        guard let value = value(name) else { return nil }
        guard case .string(let string) = value else { throw typeError(name, "a string", value) }
        return string
    }

    func bool(_ name: String) throws(APIError) -> Bool? {
        guard let value = value(name) else { return nil }
        guard case .bool(let bool) = value else { throw typeError(name, "a boolean", value) }
        return bool
    }

    func int(_ name: String, in range: ClosedRange<Int>) throws(APIError) -> Int? {
        guard let value = value(name) else { return nil }
        return try Self.int(value, param: name, in: range)
    }

    /// A finite number; its range is checked where the value is used (`GenerationParameters.validate`).
    func double(_ name: String) throws(APIError) -> Double? {
        guard let value = value(name) else { return nil }
        guard case .number(let number) = value else { throw typeError(name, "a number", value) }
        guard number.doubleValue.isFinite else { throw .invalidField(name, "'\(name)' must be a finite number, got \(number.quotedText).") }
        return number.doubleValue
    }

    static func int(_ value: JSONValue, param: String, in range: ClosedRange<Int>) throws(APIError) -> Int {
        guard case .number(let number) = value else {
            throw .invalidField(param, "'\(param)' must be an integer, got \(value.kindDescription).")
        }
        guard let int = number.intValue, range.contains(int) else {
            throw .invalidField(param, "'\(param)' must be an integer from \(range.lowerBound) to \(range.upperBound), got \(number.quotedText).")
        }
        return int
    }

    func typeError(_ name: String, _ expected: String, _ value: JSONValue) -> APIError {
        .invalidField(name, "'\(name)' must be \(expected), got \(value.kindDescription).")
    }
}
