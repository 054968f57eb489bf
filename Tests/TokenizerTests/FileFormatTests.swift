import Foundation
import XCTest
@testable import Tokenizer

/// The three file formats load to the same tokenizer; unusable files give typed errors.
final class FileFormatTests: XCTestCase {
    static let fromTokenizerJSON = try! GPT2Tokenizer.load(tokenizerJSON: Fixtures.tokenizerJSON)
    static let fromTiktoken = try! GPT2Tokenizer.load(tiktoken: Fixtures.tiktoken)

    func testThreeFormatsGiveIdenticalIDs() {
        let formats = [("tokenizer.json", Self.fromTokenizerJSON), ("gpt2.tiktoken", Self.fromTiktoken)]
        for (name, tokenizer) in formats {
            XCTAssertEqual(tokenizer.vocabularySize, 50257, name)
            XCTAssertEqual(tokenizer.endOfTextTokenID, 50256, name)
            var failures = 0
            for golden in Fixtures.golden.cases {
                let ids = tokenizer.encode(golden.text, allowSpecialTokens: golden.allow_special)
                let reference = Fixtures.gpt2.encode(golden.text, allowSpecialTokens: golden.allow_special)
                if ids != reference || ids != golden.ids {
                    failures += 1
                    if failures <= 5 { XCTFail("\(name) on \(describe(golden.text)): \(firstDifference(ids, golden.ids))") }
                }
            }
            XCTAssertEqual(failures, 0, name)
            for id in [0, 255, 256, 50_000, 50_255, 50_256] {
                XCTAssertEqual(tokenizer.bytes(of: id), Fixtures.gpt2.bytes(of: id), "\(name) id \(id)")
            }
        }
    }

    func testVocabularyFacts() {
        let tokenizer = Fixtures.gpt2
        XCTAssertEqual(tokenizer.vocabularySize, 50257)
        XCTAssertEqual(tokenizer.endOfTextTokenID, 50256)
        XCTAssertEqual(tokenizer.encode("Hello world"), [15496, 995])
        XCTAssertEqual(tokenizer.bytes(of: 50256), Array("<|endoftext|>".utf8))
        XCTAssertEqual(tokenizer.bytes(of: 220), [0x20])
        XCTAssertNil(tokenizer.bytes(of: 50257))
        XCTAssertNil(tokenizer.bytes(of: -1))
    }

    func testUnknownIDsDecodeToNothing() {
        // HF's decoder skips ids it has no token for; callers that must reject them check `bytes(of:)`.
        let tokenizer = Fixtures.gpt2
        XCTAssertEqual(tokenizer.decode([15496, 50257, -3, Int.max, 995]), "Hello world")
        var decoder = tokenizer.makeIncrementalDecoder()
        XCTAssertEqual(decoder.append(99_999), "")
        XCTAssertEqual(decoder.append(15496), "Hello")
        XCTAssertEqual(decoder.finish(), "")
    }

    func testTokenizerJSONWithOlderStringMergesLoads() throws {
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.tokenizerJSON)) as! [String: Any]
        var model = json["model"] as! [String: Any]
        model["merges"] = (model["merges"] as! [[String]]).map { $0.joined(separator: " ") }
        json["model"] = model
        let url = try temporaryDirectory().appendingPathComponent("tokenizer.json")
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        let tokenizer = try GPT2Tokenizer.load(tokenizerJSON: url)
        for golden in Fixtures.golden.cases.prefix(300) {
            XCTAssertEqual(tokenizer.encode(golden.text, allowSpecialTokens: golden.allow_special), golden.ids, describe(golden.text))
        }
    }

    func testAddedTokensOfEveryKindMatchHF() throws {
        let variant = Fixtures.golden.added_token_variant
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.tokenizerJSON)) as! [String: Any]
        json["added_tokens"] = variant.added_tokens.map { $0.mapValues(\.object) }
        let url = try temporaryDirectory().appendingPathComponent("tokenizer.json")
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        let tokenizer = try GPT2Tokenizer.load(tokenizerJSON: url)
        XCTAssertEqual(tokenizer.vocabularySize, 50263)
        XCTAssertGreaterThan(variant.cases.count, 50)
        var failures = 0
        for golden in variant.cases {
            let tokens = tokenizer.encodeWithOffsets(golden.text, allowSpecialTokens: golden.allow_special)
            let ids = tokens.map(\.id)
            let offsets = tokens.map { [$0.start, $0.end] }
            if ids != golden.ids || offsets != golden.offsets {
                failures += 1
                if failures <= 8 {
                    XCTFail("\(describe(golden.text)) special=\(golden.allow_special): got \(ids) \(offsets), HF \(golden.ids) \(golden.offsets)")
                }
            }
            let decoded = tokenizer.decode(golden.ids)
            if Array(decoded.unicodeScalars) != Array((golden.decoded ?? "").unicodeScalars) {
                failures += 1
                XCTFail("decode(\(golden.ids)) = \(describe(decoded)), HF \(describe(golden.decoded ?? ""))")
            }
        }
        XCTAssertEqual(failures, 0)

        json["post_processor"] = ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true]
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        let trimming = try GPT2Tokenizer.load(tokenizerJSON: url)
        for golden in variant.cases {
            let offsets = trimming.encodeWithOffsets(golden.text, allowSpecialTokens: golden.allow_special).map { [$0.start, $0.end] }
            XCTAssertEqual(offsets, golden.trimmed_offsets ?? [], "trimmed offsets of \(describe(golden.text)) special=\(golden.allow_special)")
        }
    }

    func testTrimmingPostProcessorTrimsOffsetsAsHF() throws {
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.tokenizerJSON)) as! [String: Any]
        json["post_processor"] = ["type": "Sequence", "processors": [
            ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
        ]]
        let url = try temporaryDirectory().appendingPathComponent("tokenizer.json")
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        let tokenizer = try GPT2Tokenizer.load(tokenizerJSON: url)
        let golden = Fixtures.golden
        XCTAssertGreaterThan(golden.trimmed_offsets.count, 1000)
        var failures = 0
        for expected in golden.trimmed_offsets {
            let text = golden.cases[expected.case].text
            let got = tokenizer.encodeWithOffsets(text).map { [$0.start, $0.end] }
            if got != expected.offsets {
                failures += 1
                if failures <= 5 { XCTFail("\(describe(text)): got \(got.prefix(8)) expected \(expected.offsets.prefix(8))") }
            }
        }
        XCTAssertEqual(failures, 0)
        // The untouched GPT-2 file does not trim.
        XCTAssertEqual(Self.fromTokenizerJSON.encodeWithOffsets("Hello world").map(\.start), [0, 5])
    }

    // MARK: - Picking a file from a directory

    func testDirectoryPrefersTokenizerJSONThenVocabThenTiktoken() throws {
        let directory = try temporaryDirectory()
        try FileManager.default.copyItem(at: Fixtures.tiktoken, to: directory.appendingPathComponent("gpt2.tiktoken"))
        XCTAssertEqual(try GPT2Tokenizer.load(directory: directory).encode("Hello world"), [15496, 995])

        // A broken tokenizer.json is skipped in favour of the next usable format.
        try Data("{not json".utf8).write(to: directory.appendingPathComponent("tokenizer.json"))
        try FileManager.default.copyItem(at: Fixtures.vocabularyJSON, to: directory.appendingPathComponent("vocab.json"))
        try FileManager.default.copyItem(at: Fixtures.mergesText, to: directory.appendingPathComponent("merges.txt"))
        XCTAssertEqual(try GPT2Tokenizer.load(directory: directory).encode(" Hello world"), [18435, 995])
    }

    func testEmptyDirectoryIsNoUsableTokenizer() throws {
        let directory = try temporaryDirectory()
        XCTAssertThrowsError(try GPT2Tokenizer.load(directory: directory)) { error in
            guard case TokenizerError.noUsableTokenizer(_, let reasons)? = error as? TokenizerError else {
                return XCTFail("unexpected error \(error)")
            }
            XCTAssertTrue(reasons.isEmpty)
        }
    }

    func testVocabularyWithoutMergesNamesTheMissingFile() throws {
        let directory = try temporaryDirectory()
        try FileManager.default.copyItem(at: Fixtures.vocabularyJSON, to: directory.appendingPathComponent("vocab.json"))
        XCTAssertThrowsError(try GPT2Tokenizer.load(directory: directory)) { error in
            guard case TokenizerError.noUsableTokenizer(_, let reasons)? = error as? TokenizerError,
                  case .unreadableFile(let path, _)? = reasons.first else { return XCTFail("\(error)") }
            XCTAssertTrue(path.hasSuffix("merges.txt"), path)
        }
    }

    func testEveryBrokenFormatIsReportedWithItsReason() throws {
        let directory = try temporaryDirectory()
        try Data("{not json".utf8).write(to: directory.appendingPathComponent("tokenizer.json"))
        try Data("[1, 2]".utf8).write(to: directory.appendingPathComponent("vocab.json"))
        try Data("#version: 0.2\na b\n".utf8).write(to: directory.appendingPathComponent("merges.txt"))
        try Data("not base64!! x\n".utf8).write(to: directory.appendingPathComponent("gpt2.tiktoken"))
        XCTAssertThrowsError(try GPT2Tokenizer.load(directory: directory)) { error in
            guard case TokenizerError.noUsableTokenizer(_, let reasons)? = error as? TokenizerError else {
                return XCTFail("unexpected error \(error)")
            }
            XCTAssertEqual(reasons.count, 3, "\(reasons)")
            guard reasons.count == 3 else { return }
            guard case .malformedJSON = reasons[0], case .malformedJSON = reasons[1],
                  case .malformedRankFile(_, 1, _) = reasons[2] else {
                return XCTFail("unexpected reasons \(reasons)")
            }
            XCTAssertTrue("\(error)".contains("tokenizer.json"), "\(error)")
        }
    }

    // MARK: - Typed errors for each kind of bad file

    func testMissingFileIsUnreadable() throws {
        let missing = try temporaryDirectory().appendingPathComponent("nope.json")
        XCTAssertThrowsError(try GPT2Tokenizer.load(tokenizerJSON: missing)) { error in
            guard case TokenizerError.unreadableFile? = error as? TokenizerError else { return XCTFail("\(error)") }
        }
    }

    func testMergeNamingAnUnknownTokenIsRejectedWithItsLine() throws {
        let directory = try temporaryDirectory()
        let vocabulary = directory.appendingPathComponent("vocab.json")
        let merges = directory.appendingPathComponent("merges.txt")
        try FileManager.default.copyItem(at: Fixtures.vocabularyJSON, to: vocabulary)
        try Data("#version: 0.2\nĠ t\nzzzq qqqz\n".utf8).write(to: merges)
        XCTAssertThrowsError(try GPT2Tokenizer.load(vocabulary: vocabulary, merges: merges)) { error in
            guard case TokenizerError.malformedMerge(_, 3, _)? = error as? TokenizerError else { return XCTFail("\(error)") }
        }
        try Data("#version: 0.2\nĠ t extra\n".utf8).write(to: merges)
        XCTAssertThrowsError(try GPT2Tokenizer.load(vocabulary: vocabulary, merges: merges)) { error in
            guard case TokenizerError.malformedMerge(_, 2, _)? = error as? TokenizerError else { return XCTFail("\(error)") }
        }
    }

    func testMergesWithByteOrderMarkAndCRLFLoad() throws {
        let directory = try temporaryDirectory()
        let merges = directory.appendingPathComponent("merges.txt")
        let original = try String(contentsOf: Fixtures.mergesText, encoding: .utf8)
        try Data(("\u{FEFF}" + original.replacingOccurrences(of: "\n", with: "\r\n")).utf8).write(to: merges)
        let tokenizer = try GPT2Tokenizer.load(vocabulary: Fixtures.vocabularyJSON, merges: merges)
        XCTAssertEqual(tokenizer.encode("Hello world, it's me."), Fixtures.gpt2.encode("Hello world, it's me."))
    }

    func testHugeTokenIDIsRejectedNotAllocated() throws {
        let directory = try temporaryDirectory()
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.vocabularyJSON)) as! [String: Int]
        json["zzz-huge"] = 2_000_000_000
        let vocabulary = directory.appendingPathComponent("vocab.json")
        try JSONSerialization.data(withJSONObject: json).write(to: vocabulary)
        XCTAssertThrowsError(try GPT2Tokenizer.load(vocabulary: vocabulary, merges: Fixtures.mergesText)) { error in
            guard case TokenizerError.invalidTokenID? = error as? TokenizerError else { return XCTFail("\(error)") }
        }
    }

    func testVocabularyWithoutEveryByteIsRejected() throws {
        let directory = try temporaryDirectory()
        let vocabulary = directory.appendingPathComponent("vocab.json")
        let merges = directory.appendingPathComponent("merges.txt")
        try Data(#"{"a": 0, "b": 1}"#.utf8).write(to: vocabulary)
        try Data("#version: 0.2\n".utf8).write(to: merges)
        XCTAssertThrowsError(try GPT2Tokenizer.load(vocabulary: vocabulary, merges: merges)) { error in
            guard case TokenizerError.missingByteToken(_, 0)? = error as? TokenizerError else { return XCTFail("\(error)") }
        }
    }

    func testTokenizerJSONOfAnotherKindIsUnsupported() throws {
        let original = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.tokenizerJSON)) as! [String: Any]
        let edits: [(String, (inout [String: Any]) -> Void)] = [
            ("WordPiece model", { json in var model = json["model"] as! [String: Any]; model["type"] = "WordPiece"; json["model"] = model }),
            ("prefix space", { json in json["pre_tokenizer"] = ["type": "ByteLevel", "add_prefix_space": true] }),
            ("Metaspace", { json in json["pre_tokenizer"] = ["type": "Metaspace"] }),
            ("normalizer", { json in json["normalizer"] = ["type": "NFC"] }),
            ("dropout", { json in var model = json["model"] as! [String: Any]; model["dropout"] = 0.1; json["model"] = model }),
        ]
        let directory = try temporaryDirectory()
        for (name, edit) in edits {
            var json = original
            edit(&json)
            let url = directory.appendingPathComponent("tokenizer.json")
            try JSONSerialization.data(withJSONObject: json).write(to: url)
            XCTAssertThrowsError(try GPT2Tokenizer.load(tokenizerJSON: url), name) { error in
                guard case TokenizerError.unsupportedTokenizer? = error as? TokenizerError else { return XCTFail("\(name): \(error)") }
            }
        }
    }

    func testRankFileErrors() throws {
        let directory = try temporaryDirectory()
        let url = directory.appendingPathComponent("bad.tiktoken")
        try Data("IQ== 0\nIQ== 1\n".utf8).write(to: url)
        XCTAssertThrowsError(try GPT2Tokenizer.load(tiktoken: url)) { error in
            guard case TokenizerError.malformedRankFile(_, 2, _)? = error as? TokenizerError else { return XCTFail("\(error)") }
        }
        try Data("IQ== zero\n".utf8).write(to: url)
        XCTAssertThrowsError(try GPT2Tokenizer.load(tiktoken: url)) { error in
            guard case TokenizerError.malformedRankFile(_, 1, _)? = error as? TokenizerError else { return XCTFail("\(error)") }
        }
        try Data("IQ== 0\n".utf8).write(to: url)
        XCTAssertThrowsError(try GPT2Tokenizer.load(tiktoken: url)) { error in
            guard case TokenizerError.missingByteToken? = error as? TokenizerError else { return XCTFail("\(error)") }
        }
    }

    private func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tokenizer-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }
}
