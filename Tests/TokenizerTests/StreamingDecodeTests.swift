import XCTest
@testable import Tokenizer

/// The incremental decoder on streams that split characters between tokens.
final class StreamingDecodeTests: XCTestCase {
    private let tokenizer = Fixtures.gpt2

    private func stream(_ ids: [Int]) -> [String] {
        var decoder = tokenizer.makeIncrementalDecoder()
        var pieces = ids.map { decoder.append($0) }
        pieces.append(decoder.finish())
        return pieces
    }

    func testSplitEmojiComesOutWhole() {
        // GPT-2 encodes 😀 as two tokens: F0 9F 98 | 80.
        let ids = tokenizer.encode("😀")
        XCTAssertEqual(ids.count, 2)
        XCTAssertEqual(stream(ids), ["", "😀", ""])
    }

    func testEveryCharacterWaitsForItsLastByte() {
        for text in ["中文字", "é", "👨‍👩‍👧‍👦", "👋🏽", "ﬁ𝐀", "a中b😀c"] {
            let pieces = stream(byteTokensOf(text))
            XCTAssertEqual(pieces.joined(), text)
            // No piece holds a broken character: each one is valid UTF-8 on its own.
            for piece in pieces { XCTAssertFalse(piece.unicodeScalars.contains("\u{FFFD}"), "\(text): \(pieces)") }
            XCTAssertEqual(pieces.filter { !$0.isEmpty }.count, text.unicodeScalars.count, "\(text): \(pieces)")
        }
    }

    func testInvalidBytesBecomeReplacementCharactersAsInFullDecode() {
        // Lone continuation bytes, a truncated sequence followed by ASCII, an overlong lead, a surrogate.
        let streams: [[UInt8]] = [[0x80, 0x80], [0xE2, 0x82, 0x41], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF0, 0x9F, 0x98],
                                  [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82, 0xE2, 0x82, 0xAC]]
        for bytes in streams {
            let ids = bytes.map { byteTokenID($0) }
            let full = tokenizer.decode(ids)
            XCTAssertEqual(Array(stream(ids).joined().unicodeScalars), Array(full.unicodeScalars), "\(bytes)")
        }
        XCTAssertEqual(tokenizer.decode([0xE2, 0x82, 0x41].map { byteTokenID($0) }), "\u{FFFD}A")
        XCTAssertEqual(tokenizer.decode([0xF0, 0x9F, 0x98].map { byteTokenID($0) }), "\u{FFFD}")
    }

    func testRandomByteStreamsConcatenateToFullDecode() {
        var generator = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            let length = Int(generator.next() % 12) + 1
            let ids = (0..<length).map { _ in Int(generator.next() % 256) }  // byte-valued tokens 0..255
            let full = tokenizer.decode(ids)
            let pieces = stream(ids)
            if Array(pieces.joined().unicodeScalars) != Array(full.unicodeScalars) {
                return XCTFail("ids \(ids): pieces \(pieces) vs \(describe(full))")
            }
        }
    }

    func testFinishResetsTheDecoder() {
        var decoder = tokenizer.makeIncrementalDecoder()
        XCTAssertEqual(decoder.append(byteTokenID(0xE4)), "")
        XCTAssertEqual(decoder.finish(), "\u{FFFD}")
        XCTAssertEqual(decoder.append(15496), "Hello")
    }

    /// Single-byte token ids spelling `text`'s UTF-8, so every multi-byte character is split.
    private func byteTokensOf(_ text: String) -> [Int] { text.utf8.map(byteTokenID) }

    private func byteTokenID(_ byte: UInt8) -> Int {
        Int(tokenizer.vocabulary.byteTokenIDs[Int(byte)])
    }
}

/// A small deterministic generator for test inputs.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
