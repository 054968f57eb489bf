import Foundation
import XCTest
@testable import Tokenizer

// MARK: - Golden fixtures written by scripts/fixtures/generate_tokenizer_fixtures.py

struct GoldenCase: Decodable {
    var category: String?
    var text: String
    var allow_special: Bool
    var ids: [Int]
    var offsets: [[Int]]
    /// HF's decode of `ids` (added-token cases only).
    var decoded: String?
    /// Offsets with a trimming ByteLevel post-processor (added-token cases only).
    var trimmed_offsets: [[Int]]?
}

struct GoldenDecodeCase: Decodable {
    var ids: [Int]
    var text: String
    /// HF's `decode(ids, skip_special_tokens=True)`.
    var text_skipping_special: String
}

struct TrimmedOffsets: Decodable {
    var `case`: Int
    var offsets: [[Int]]
}

/// GPT-2 plus added tokens of every kind: their tokenizer.json entries and HF's encodings.
struct AddedTokenVariant: Decodable {
    /// The `added_tokens` array of tokenizer.json, kept as raw JSON objects to write back.
    var added_tokens: [[String: AnyJSONValue]]
    var cases: [GoldenCase]
}

/// A JSON scalar (what added token entries hold), decodable and writable with JSONSerialization.
enum AnyJSONValue: Decodable {
    case bool(Bool), number(Int), string(String)

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .number(value)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    var object: Any {
        switch self {
        case .bool(let value): return value
        case .number(let value): return value
        case .string(let value): return value
        }
    }
}

struct GoldenFile: Decodable {
    var transformers_version: String
    var cases: [GoldenCase]
    var decode_cases: [GoldenDecodeCase]
    /// Offsets HF reports with a ByteLevel post-processor that trims (`case` indexes `cases`).
    var trimmed_offsets: [TrimmedOffsets]
    var added_token_variant: AddedTokenVariant
    /// `[first code point, count, class]` runs covering every non-surrogate code point; class is
    /// "L", "N", "W" or "O" as HF's pre-tokenizer treats the code point.
    var character_classes: [[CharacterClassRun]]
}

/// One field of a character-class run: a number or the class letter.
enum CharacterClassRun: Decodable, Equatable {
    case number(Int)
    case name(String)

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int.self) {
            self = .number(number)
        } else {
            self = .name(try container.decode(String.self))
        }
    }
}

enum Fixtures {
    static let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    static let vocabularyDirectory = testsDirectory.appendingPathComponent("Fixtures/tiny-gpt-neo")
    static let tokenizerDirectory = testsDirectory.appendingPathComponent("Fixtures/tokenizer")
    static let vocabularyJSON = vocabularyDirectory.appendingPathComponent("vocab.json")
    static let mergesText = vocabularyDirectory.appendingPathComponent("merges.txt")
    static let tokenizerJSON = tokenizerDirectory.appendingPathComponent("tokenizer.json")
    static let tiktoken = tokenizerDirectory.appendingPathComponent("gpt2.tiktoken")

    static let golden: GoldenFile = {
        do {
            let data = try Data(contentsOf: tokenizerDirectory.appendingPathComponent("cases.json"))
            return try JSONDecoder().decode(GoldenFile.self, from: data)
        } catch {
            fatalError("cannot read the golden tokenizer fixture: \(error)")
        }
    }()

    /// GPT-2 from vocab.json + merges.txt, loaded once for all tests.
    static let gpt2: GPT2Tokenizer = {
        do {
            return try GPT2Tokenizer.load(vocabulary: vocabularyJSON, merges: mergesText)
        } catch {
            fatalError("cannot load GPT-2's vocabulary: \(error)")
        }
    }()
}

/// Prints the text as Swift would spell it, short enough for a failure message.
func describe(_ text: String, limit: Int = 80) -> String {
    let debug = text.debugDescription
    return debug.count > limit ? String(debug.prefix(limit)) + "…" : debug
}

/// The first place two id lists differ, for failure messages.
func firstDifference(_ got: [Int], _ expected: [Int]) -> String {
    let index = zip(got, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(got.count, expected.count)
    let gotTail = Array(got.dropFirst(index).prefix(6))
    let expectedTail = Array(expected.dropFirst(index).prefix(6))
    return "at token \(index): got \(gotTail) expected \(expectedTail) (lengths \(got.count) vs \(expected.count))"
}
