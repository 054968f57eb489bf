import XCTest
@testable import InferenceAPI

final class JSONTests: XCTestCase {
    private func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    func testParsesEveryKindAndKeepsKeyOrder() throws {
        let value = try parse(#" {"b": [1, -2.5e3, true, false, null], "a": "x\n\u00e9\ud83d\ude00"} "#)
        guard case .object(let object) = value else { return XCTFail("not an object: \(value)") }
        XCTAssertEqual(object.keys, ["b", "a"])
        XCTAssertEqual(value["a"], .string("x\né😀"))
        XCTAssertEqual(value["b"], .array([.number(JSONNumber(text: "1")), .number(JSONNumber(text: "-2.5e3")), .bool(true), .bool(false), .null]))
    }

    func testIntegersAreTellableFromFractions() {
        XCTAssertEqual(JSONNumber(text: "2").intValue, 2)
        XCTAssertEqual(JSONNumber(text: "2.0").intValue, 2)
        XCTAssertEqual(JSONNumber(text: "2e1").intValue, 20)
        XCTAssertNil(JSONNumber(text: "2.5").intValue)
        XCTAssertNil(JSONNumber(text: "1e300").intValue)
        XCTAssertNil(JSONNumber(text: "1e-400").intValue, "not an integer, although it reads as the double 0")
        XCTAssertNil(JSONNumber(text: "9007199254740993.0").intValue, "beyond 2^53 only integer literals are exact")
        XCTAssertNil(JSONNumber(text: "9223372036854775808").intValue)
        XCTAssertEqual(JSONNumber(text: "9007199254740992.0").intValue, 1 << 53)
        XCTAssertEqual(JSONNumber(text: "-1.20e1").intValue, -12)
        XCTAssertEqual(JSONNumber(text: "0.0e5").intValue, 0)
        XCTAssertEqual(JSONNumber(text: "12500e-2").intValue, 125)
        XCTAssertEqual(JSONNumber(text: "9223372036854775807").intValue, Int.max)
    }

    func testRejectsMalformedDocuments() {
        let bad = ["", "{", "{\"a\":}", "[1,]", "{\"a\":1,}", "01", "1.", "-", "tru", "\"\\x\"", "\"\u{01}\"", "{} {}",
                   "\"\\ud800\"", "\"\\udc00\"", "{a:1}", "[1 2]", "NaN", "'a'"]
        for text in bad {
            XCTAssertThrowsError(try parse(text), "accepted \(text.debugDescription)")
        }
    }

    func testRejectsInvalidUTF8InsideStrings() {
        XCTAssertThrowsError(try JSONParser.parse([0x22, 0xFF, 0x22]))
    }

    func testRejectsDeepNesting() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        XCTAssertThrowsError(try parse(deep)) { error in
            XCTAssertTrue(String(describing: error).contains("nested"), "\(error)")
        }
        XCTAssertNoThrow(try parse(String(repeating: "[", count: 60) + String(repeating: "]", count: 60)))
    }

    func testEncodesCompactlyWithEscapes() throws {
        let value: JSONValue = .object(["t": .string("a\"b\\c\n\u{01}é"), "n": .int(-3), "l": .array([.null, .bool(true), .double(0.25)])])
        XCTAssertEqual(value.encodedString, #"{"t":"a\"b\\c\n\u0001é","n":-3,"l":[null,true,0.25]}"#)
        XCTAssertEqual(try JSONParser.parse(value.encoded), value)
    }

    func testNonFiniteNumbersStayValidJSON() {
        XCTAssertEqual(JSONValue.double(-.infinity).encodedString, "-9999.0")
        XCTAssertEqual(JSONValue.double(.nan).encodedString, "0")
    }
}
