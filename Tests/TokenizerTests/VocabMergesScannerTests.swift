import Foundation
import XCTest
@testable import Tokenizer

/// The byte scanner of vocab.json + merges.txt gives exactly the general path's tables for the files it
/// accepts, and declines (nil) the files the general path must decide, so that loading gives the same
/// tokenizer or the same error whichever reads the files.
final class VocabMergesScannerTests: XCTestCase {
    private let vocabularyURL = URL(fileURLWithPath: "/vocab.json")
    private let mergesURL = URL(fileURLWithPath: "/merges.txt")

    /// The general path's tables, or nil where it throws.
    private func parsed(_ vocabulary: String, _ merges: String) -> VocabMergesTables? {
        try? VocabMergesLoader.parse(vocabulary: Data(vocabulary.utf8), at: vocabularyURL, merges: Data(merges.utf8), at: mergesURL)
    }

    private func scanned(_ vocabulary: String, _ merges: String) -> VocabMergesTables? {
        VocabMergesScanner.scan(vocabulary: Data(vocabulary.utf8), merges: Data(merges.utf8))
    }

    /// Every single byte's token, so that a vocabulary is complete enough to be loaded.
    private var byteTokens: String {
        (0..<256).map { byte in
            let spelling = ByteLevelTable.vocabularyString(of: [UInt8(byte)])
            let escaped = spelling == "\"" ? "\\\"" : spelling == "\\" ? "\\\\" : spelling
            return "\"\(escaped)\": \(byte)"
        }.joined(separator: ", ")
    }

    func testGPT2FilesScanToTheGeneralPathsTables() throws {
        let vocabulary = try Data(contentsOf: Fixtures.vocabularyJSON)
        let merges = try Data(contentsOf: Fixtures.mergesText)
        let scanned = try XCTUnwrap(VocabMergesScanner.scan(vocabulary: vocabulary, merges: merges), "GPT-2's files take the scanner")
        let parsed = try VocabMergesLoader.parse(
            vocabulary: vocabulary, at: Fixtures.vocabularyJSON, merges: merges, at: Fixtures.mergesText)
        XCTAssertEqual(scanned.idOfBytes.count, 50_257)
        XCTAssertEqual(scanned.merges.count, 50_000)
        XCTAssertEqual(scanned.endOfTextID, 50_256)
        XCTAssertEqual(scanned, parsed)
    }

    func testAcceptedFormsGiveTheGeneralPathsTables() throws {
        let cases: [(String, String, String)] = [
            ("escapes, whitespace, a key with the U+0120 spelling and an escaped one",
             "{ \(byteTokens),\n\t\"\\u0120a\" : 300 , \"a\\/b\\\"c\\\\d\\n\\u0041\": 301, \"<|endoftext|>\": 302\r\n}",
             "#version: 0.2\nĠ a\n"),
            ("CRLF, a byte order mark, empty lines and a repeated merge (the first rank stays)",
             "{\(byteTokens), \"ab\": 256, \"abc\": 257}", "\u{FEFF}#version: 0.2\r\na b\r\n\r\nab c\r\na b\r\n"),
            ("no version line, no final newline", "{\(byteTokens), \"ab\": 256}", "a b"),
            ("a key outside the byte table is its own UTF-8 (ʼ, U+02BC)", "{\(byteTokens), \"xʼ\": 256}", ""),
            ("an empty object and no merges (no tokens: the vocabulary check rejects it later)", " {} ", ""),
            ("an empty key", "{\"\": 0, \(byteTokens.replacingOccurrences(of: ": 0,", with: ": 999,"))}", ""),
        ]
        for (name, vocabulary, merges) in cases {
            let general = parsed(vocabulary, merges)
            XCTAssertNotNil(general, "\(name): the general path reads it")
            XCTAssertNotNil(scanned(vocabulary, merges), "\(name): the scanner reads it")
            XCTAssertEqual(scanned(vocabulary, merges), general, name)
        }
        let repeated = try XCTUnwrap(scanned("{\(byteTokens), \"ab\": 256, \"abc\": 257}", "a b\nab c\na b\n"))
        XCTAssertEqual(repeated.merges[BytePair(left: 97, right: 98)], Merge(rank: 0, result: 256))
        XCTAssertEqual(repeated.merges[BytePair(left: 256, right: 99)], Merge(rank: 1, result: 257))
    }

    func testFilesTheGeneralPathMustDecideAreDeclined() {
        let complete = "{\(byteTokens), \"ab\": 256}"
        let cases: [(String, String, String)] = [
            ("a key given twice", "{\(byteTokens), \"ab\": 256, \"ab\": 257}", ""),
            ("two spellings of the same bytes (U+0100 is byte 0, and so is an escaped NUL)", "{\(byteTokens), \"\\u0000\": 400}", ""),
            ("a fraction", "{\(byteTokens), \"ab\": 256.0}", ""),
            ("an exponent", "{\(byteTokens), \"ab\": 2e2}", ""),
            ("a negative id", "{\(byteTokens), \"ab\": -1}", ""),
            ("a leading zero", "{\(byteTokens), \"ab\": 0256}", ""),
            ("an id past Int32", "{\(byteTokens), \"ab\": 2147483647}", ""),
            ("a trailing comma (which JSONDecoder accepts)", "{\(byteTokens), \"ab\": 256,}", ""),
            ("a combining mark, which String keys compare canonically", "{\(byteTokens), \"e\u{301}\": 256}", ""),
            ("an escaped combining mark", "{\(byteTokens), \"e\\u0301\": 256}", ""),
            ("an escaped surrogate pair", "{\(byteTokens), \"\\ud83d\\ude00\": 256}", ""),
            ("a three-byte character", "{\(byteTokens), \"€\": 256}", ""),
            ("an unescaped control character", "{\(byteTokens), \"a\tb\": 256}", ""),
            ("not an object", "[1, 2]", ""),
            ("text after the object", complete + " {}", ""),
            ("a merge line of three parts", complete, "a b c\n"),
            ("a merge line with a leading space", complete, " ab\n"),
            ("a merge of a token not in the vocabulary", complete, "a q3\n"),
            ("a merge whose result is not in the vocabulary", complete, "b a\n"),
            ("a version line that is not ASCII", complete, "#version é\na b\n"),
        ]
        for (name, vocabulary, merges) in cases {
            XCTAssertNil(scanned(vocabulary, merges), name)
        }
        // Bytes that are not UTF-8 in a merge line.
        XCTAssertNil(VocabMergesScanner.scan(vocabulary: Data(complete.utf8), merges: Data([0x61, 0x20, 0xFF, 0x0A])))
    }

    func testDeclinedFilesLoadOrFailAsBefore() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("scanner-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let vocabulary = directory.appendingPathComponent("vocab.json"), merges = directory.appendingPathComponent("merges.txt")
        func load(_ vocabularyText: String, _ mergesText: String) throws -> GPT2Tokenizer {
            try Data(vocabularyText.utf8).write(to: vocabulary)
            try Data(mergesText.utf8).write(to: merges)
            return try GPT2Tokenizer.load(vocabulary: vocabulary, merges: merges)
        }
        // Declined by the scanner, read by the general path: a three-byte character in a key.
        let tokenizer = try load("{\(byteTokens), \"€\": 256, \"<|endoftext|>\": 257}", "")
        XCTAssertEqual(tokenizer.bytes(of: 256), Array("€".utf8))
        XCTAssertEqual(tokenizer.endOfTextTokenID, 257)
        // Declined, read by the general path: two spellings of byte 0 keep the lower id.
        XCTAssertEqual(try load("{\(byteTokens), \"\\u0000\": 400}", "").encode("\u{0}"), [0])
        // Declined, and the general path's errors, with their file and line.
        XCTAssertThrowsError(try load("{\(byteTokens), \"ab\": 256}", "a b\nb q3\n")) { error in
            guard case TokenizerError.malformedMerge(_, let line, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(line, 2)
        }
        XCTAssertThrowsError(try load("{\(byteTokens), \"ab\": -1}", "")) { error in
            guard case TokenizerError.invalidTokenID = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try load("{\(byteTokens), \"ab\" 256}", "")) { error in
            guard case TokenizerError.malformedJSON = error else { return XCTFail("\(error)") }
        }
        // A missing merges file is reported after a malformed vocabulary, as before.
        try FileManager.default.removeItem(at: merges)
        XCTAssertThrowsError(try GPT2Tokenizer.load(vocabulary: vocabulary, merges: merges)) { error in
            guard case TokenizerError.malformedJSON = error else { return XCTFail("\(error)") }
        }
    }

    /// Random corruptions of small files: whatever the scanner accepts, it reads as the general path does.
    func testCorruptedFilesAreDeclinedOrReadAlike() {
        let vocabulary = Array("{\(byteTokens), \"ab\": 256, \"abc\": 257, \"\\u0120x\": 258, \"<|endoftext|>\": 259}".utf8)
        let merges = Array("#version: 0.2\na b\nab c\n".utf8)
        let alphabet: [UInt8] = Array(" \t\r\n\"\\{}:,0123456789-.eEu/abcĠé".utf8) + [0x00, 0x80, 0xC3, 0xFF]
        var generator = SystemRandomNumberGenerator()
        var accepted = 0
        for _ in 0..<2_000 {
            var files = [vocabulary, merges]
            let file = Int.random(in: 0...1, using: &generator)
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let at = Int.random(in: 0..<files[file].count, using: &generator)
                switch Int.random(in: 0...2, using: &generator) {
                case 0: files[file][at] = alphabet.randomElement(using: &generator)!
                case 1: files[file].insert(alphabet.randomElement(using: &generator)!, at: at)
                default: files[file].remove(at: at)
                }
            }
            guard let scanned = VocabMergesScanner.scan(vocabulary: Data(files[0]), merges: Data(files[1])) else { continue }
            accepted += 1
            let parsed = try? VocabMergesLoader.parse(
                vocabulary: Data(files[0]), at: vocabularyURL, merges: Data(files[1]), at: mergesURL)
            let vocabularyEnd = String(decoding: files[0].suffix(80), as: UTF8.self)
            XCTAssertEqual(scanned, parsed, "vocabulary ...\(vocabularyEnd), merges \(String(decoding: files[1], as: UTF8.self))")
        }
        XCTAssertGreaterThan(accepted, 100, "most single corruptions inside the byte tokens still scan")
    }
}
