import XCTest
@testable import Tokenizer

/// Every case of the HF-generated corpus: ids, offsets, decode, round trip, streaming.
final class GoldenEncodingTests: XCTestCase {
    func testCorpusIsLargeAndHard() {
        let golden = Fixtures.golden
        XCTAssertGreaterThanOrEqual(golden.cases.count, 500)
        let categories = Set(golden.cases.map(\.category))
        for required in ["prose", "code", "whitespace", "contraction", "digits", "punctuation", "multilingual",
                         "emoji", "combining", "odd-unicode", "special", "long", "real-text"] {
            XCTAssertTrue(categories.contains(required), "corpus lacks \(required)")
        }
    }

    func testIDsMatchHuggingFace() {
        var failures = 0
        for golden in Fixtures.golden.cases {
            let ids = Fixtures.gpt2.encode(golden.text, allowSpecialTokens: golden.allow_special)
            if ids != golden.ids {
                failures += 1
                if failures <= 10 {
                    XCTFail("[\(golden.category ?? "")] \(describe(golden.text)) special=\(golden.allow_special): \(firstDifference(ids, golden.ids))")
                }
            }
        }
        XCTAssertEqual(failures, 0, "\(failures) of \(Fixtures.golden.cases.count) cases differ from HF")
    }

    func testOffsetsMatchHuggingFace() {
        var failures = 0
        for golden in Fixtures.golden.cases {
            let tokens = Fixtures.gpt2.encodeWithOffsets(golden.text, allowSpecialTokens: golden.allow_special)
            let got = tokens.map { [$0.start, $0.end] }
            if tokens.map(\.id) != golden.ids || got != golden.offsets {
                failures += 1
                if failures <= 10 {
                    let index = zip(got, golden.offsets).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(got.count, golden.offsets.count)
                    XCTFail("[\(golden.category ?? "")] \(describe(golden.text)): offsets differ at token \(index): got \(Array(got.dropFirst(index).prefix(4))) expected \(Array(golden.offsets.dropFirst(index).prefix(4)))")
                }
            }
        }
        XCTAssertEqual(failures, 0, "\(failures) cases have offsets unlike HF's")
    }

    func testDecodeMatchesHuggingFace() {
        var failures = 0
        for golden in Fixtures.golden.decode_cases {
            let text = Fixtures.gpt2.decode(golden.ids)
            if text != golden.text || Array(text.unicodeScalars) != Array(golden.text.unicodeScalars) {
                failures += 1
                if failures <= 10 {
                    XCTFail("decode(\(golden.ids)) = \(describe(text)), HF gives \(describe(golden.text))")
                }
            }
        }
        XCTAssertEqual(failures, 0)
        XCTAssertGreaterThan(Fixtures.golden.decode_cases.count, 400)
    }

    func testDecodeSkippingSpecialTokensMatchesHuggingFace() {
        var failures = 0
        var skipped = 0
        for golden in Fixtures.golden.decode_cases {
            let text = Fixtures.gpt2.decode(golden.ids, skipSpecialTokens: true)
            var decoder = Fixtures.gpt2.makeIncrementalDecoder(skipSpecialTokens: true)
            let streamed = golden.ids.map { decoder.append($0) }.joined() + decoder.finish()
            if golden.text != golden.text_skipping_special { skipped += 1 }
            let expected = Array(golden.text_skipping_special.unicodeScalars)
            if Array(text.unicodeScalars) != expected || Array(streamed.unicodeScalars) != expected {
                failures += 1
                if failures <= 10 {
                    XCTFail("decode(\(golden.ids), skip) = \(describe(text)) / streamed \(describe(streamed)), HF gives \(describe(golden.text_skipping_special))")
                }
            }
        }
        XCTAssertEqual(failures, 0)
        XCTAssertGreaterThan(skipped, 3, "the fixture must hold ids with special tokens")
        XCTAssertTrue(Fixtures.gpt2.isSpecialToken(50256))
        XCTAssertFalse(Fixtures.gpt2.isSpecialToken(15496))
    }

    func testDecodeOfEncodeIsIdentity() {
        var failures = 0
        for golden in Fixtures.golden.cases {
            let decoded = Fixtures.gpt2.decode(Fixtures.gpt2.encode(golden.text, allowSpecialTokens: golden.allow_special))
            // Compare scalars: String equality is canonical equivalence, which would hide a lost accent form.
            if Array(decoded.unicodeScalars) != Array(golden.text.unicodeScalars) {
                failures += 1
                if failures <= 10 { XCTFail("round trip of \(describe(golden.text)) gave \(describe(decoded))") }
            }
        }
        XCTAssertEqual(failures, 0)
    }

    func testIncrementalDecodeConcatenatesToFullDecode() {
        var failures = 0
        let streams = Fixtures.golden.cases.map(\.ids) + Fixtures.golden.decode_cases.map(\.ids)
        for ids in streams {
            var decoder = Fixtures.gpt2.makeIncrementalDecoder()
            var pieces = ids.map { decoder.append($0) }
            pieces.append(decoder.finish())
            let full = Fixtures.gpt2.decode(ids)
            if Array(pieces.joined().unicodeScalars) != Array(full.unicodeScalars) {
                failures += 1
                if failures <= 10 { XCTFail("stream \(ids.prefix(12)): pieces \(pieces.prefix(6)) vs \(describe(full))") }
            }
        }
        XCTAssertEqual(failures, 0)
    }
}
