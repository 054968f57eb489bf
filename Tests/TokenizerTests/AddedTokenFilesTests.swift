import Foundation
import XCTest
@testable import Tokenizer

/// A transformers 4.x tokenizer folder: vocab.json + merges.txt with added tokens in added_tokens.json,
/// tokenizer_config.json (added_tokens_decoder) and special_tokens_map.json. Golden ids from
/// scripts/fixtures/generate_added_token_fixtures.py (AutoTokenizer on the same files).
final class AddedTokenFilesTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    struct Expected: Decodable {
        struct Case: Decodable {
            var text: String
            var ids: [Int]
            var decodedSkippingSpecial: String
            enum CodingKeys: String, CodingKey { case text, ids, decodedSkippingSpecial = "decoded_skipping_special" }
        }
        var vocabularySize: Int
        var cases: [Case]
        enum CodingKeys: String, CodingKey { case cases, vocabularySize = "vocabulary_size" }
    }

    func folder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("added-tokens-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        for name in ["vocab.json", "merges.txt"] {
            try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("tiny-gpt-neo/\(name)"), to: folder.appendingPathComponent(name))
        }
        for name in ["added_tokens.json", "tokenizer_config.json", "special_tokens_map.json"] {
            try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("tokenizer-added/\(name)"), to: folder.appendingPathComponent(name))
        }
        return folder
    }

    func testAddedTokensMatchTransformers() throws {
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("tokenizer-added/expected.json")))
        let tokenizer = try GPT2Tokenizer.load(directory: try folder())
        XCTAssertEqual(tokenizer.vocabularySize, expected.vocabularySize)
        for c in expected.cases {
            XCTAssertEqual(tokenizer.encode(c.text, allowSpecialTokens: true), c.ids, c.text)
            XCTAssertEqual(tokenizer.decode(c.ids, skipSpecialTokens: true), c.decodedSkippingSpecial, c.text)
        }
    }

    func testMalformedSideFilesNameTheFile() throws {
        let directory = try folder()
        let added = directory.appendingPathComponent("added_tokens.json")
        try Data(#"{"<x>": "fifty"}"#.utf8).write(to: added)
        XCTAssertThrowsError(try GPT2Tokenizer.load(directory: directory)) { XCTAssertTrue("\($0)".contains(added.path), "\($0)") }
        try Data("[1, 2]".utf8).write(to: added)
        XCTAssertThrowsError(try GPT2Tokenizer.load(directory: directory)) { XCTAssertTrue("\($0)".contains(added.path), "\($0)") }
    }
}
