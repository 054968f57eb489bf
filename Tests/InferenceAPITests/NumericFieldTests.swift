import Foundation
import XCTest
@testable import InferenceAPI

/// Every number a request can carry, driven over loopback with the values that break arithmetic:
/// no answer may be a 5xx, integer fields refuse what is not exactly an integer with a 400 naming the
/// field, and the server is alive at the end.
final class NumericFieldTests: XCTestCase {
    /// A request body with `@` where the number goes, and the `param` a 400 must name.
    struct Field {
        var path: String
        var body: String
        var param: String
        var isInteger: Bool
    }

    static let fields: [Field] = {
        func completion(_ name: String, integer: Bool = true, extra: String = "") -> Field {
            Field(path: "/v1/completions", body: #"{"prompt":"Hi","max_tokens":1,\#(extra)"\#(name)":@}"#, param: name, isInteger: integer)
        }
        var fields: [Field] = [
            completion("max_tokens"), completion("n"), completion("best_of"), completion("logprobs"), completion("top_k"),
            completion("seed"), completion("temperature", integer: false), completion("top_p", integer: false),
            completion("presence_penalty", integer: false), completion("frequency_penalty", integer: false),
            completion("repetition_penalty", integer: false),
            completion("max_tokens", extra: #""echo":true,"logprobs":1,"#),
            completion("n", extra: #""best_of":16,"#),
            Field(path: "/v1/completions", body: #"{"prompt":[@],"max_tokens":1}"#, param: "prompt", isInteger: true),
            Field(path: "/v1/completions", body: #"{"prompt":[[1,@]],"max_tokens":1}"#, param: "prompt[0]", isInteger: true),
            Field(path: "/v1/completions", body: #"{"prompt":"Hi","max_tokens":1,"logit_bias":{"@":1}}"#, param: "logit_bias", isInteger: true),
            Field(path: "/v1/completions", body: #"{"prompt":"Hi","max_tokens":1,"logit_bias":{"5":@}}"#, param: "logit_bias", isInteger: false),
            Field(path: "/v1/detokenize", body: #"{"tokens":[1,@]}"#, param: "tokens", isInteger: true),
            Field(path: "/v1/embeddings", body: #"{"input":[@]}"#, param: "input", isInteger: true),
            Field(path: "/v1/embeddings", body: #"{"input":[[@]]}"#, param: "input[0]", isInteger: true),
            Field(path: "/v1/embeddings", body: #"{"input":"Hi","dimensions":@}"#, param: "dimensions", isInteger: true),
            Field(path: "/v1/classify", body: #"{"input":"Hi","top_k":@}"#, param: "top_k", isInteger: true),
        ]
        for name in ["top_k", "max_seq_len", "doc_stride", "max_answer_len"] {
            fields.append(Field(path: "/v1/answer", body: #"{"question":"Who?","context":"Ann met Bob in Paris.","\#(name)":@}"#,
                                param: name, isInteger: true))
        }
        return fields
    }()

    /// Int.max, Int.min, 2^53, one past Int.max, and numbers that are not integers.
    static let extremes = ["0", "-1", "9223372036854775807", "-9223372036854775808", "9007199254740992",
                           "9223372036854775808", "1e300", "-1e300", "1e-400", "1.5", "2.0", "9007199254740993.0",
                           String(repeating: "9", count: 5000)]
    static let notIntegers: Set<String> = ["1e300", "-1e300", "1e-400", "1.5", "9007199254740993.0", "9223372036854775808",
                                           String(repeating: "9", count: 5000)]

    func testExtremeNumbersAreRefusedWithoutHarm() async throws {
        let running = try await RunningServer.start(for: self)
        try await running.assertAlive()
        let before = residentBytes()
        var cases = 0
        for field in Self.fields {
            for value in Self.extremes {
                let body = field.body.replacingOccurrences(of: "@", with: value)
                let reply = try await running.client.send("POST", field.path, json: body)
                cases += 1
                let what = "\(field.path) \(field.body) with \(value.prefix(40)): \(reply.status) \(reply.text.prefix(300))"
                XCTAssertTrue((200..<500).contains(reply.status), what)
                XCTAssertLessThan(reply.body.count, 4096, "an error quotes a short prefix at most: " + what)
                guard field.isInteger, Self.notIntegers.contains(value) else { continue }
                XCTAssertEqual(reply.status, 400, what)
                let error = try JSONParser.parse(reply.body)["error"]
                XCTAssertEqual(error?["param"]?.stringValue, field.param, what)
            }
        }
        let growth = residentBytes() - before
        print("NumericFieldTests: \(cases) requests, resident memory grew by \(growth >> 20) MiB")
        XCTAssertLessThan(growth, 256 << 20)
        try await running.assertAlive()
    }
}
