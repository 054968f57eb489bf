import XCTest
@testable import Tokenizer

/// Invariants on random text beyond the golden corpus: round trip, streaming, offsets.
final class PropertyTests: XCTestCase {
    /// Random strings mixing ASCII structure with scalars from every plane (no surrogates).
    private func randomTexts(count: Int, seed: UInt64) -> [String] {
        var generator = SplitMix64(seed: seed)
        let ascii = Array(" \t\n\r'sStT!?.,-_0123456789abcxyzABC<|>endoftext")
        return (0..<count).map { _ in
            var scalars = String.UnicodeScalarView()
            for _ in 0..<(Int(generator.next() % 40) + 1) {
                switch generator.next() % 4 {
                case 0, 1:
                    scalars.append(ascii[Int(generator.next() % UInt64(ascii.count))].unicodeScalars.first!)
                case 2:
                    scalars.append(Unicode.Scalar(UInt32(0x80 + generator.next() % 0x3000)) ?? "x")
                default:
                    let value = UInt32(generator.next() % 0x110000)
                    scalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
                }
            }
            return String(scalars)
        }
    }

    func testRoundTripStreamingAndOffsetsOnRandomText() {
        let tokenizer = Fixtures.gpt2
        var failures = 0
        for (index, text) in randomTexts(count: 3000, seed: 2024).enumerated() {
            let allowSpecial = index % 2 == 0
            let tokens = tokenizer.encodeWithOffsets(text, allowSpecialTokens: allowSpecial)
            let ids = tokens.map(\.id)
            let decoded = tokenizer.decode(ids)
            var decoder = tokenizer.makeIncrementalDecoder()
            let streamed = ids.map { decoder.append($0) }.joined() + decoder.finish()
            let scalarCount = text.unicodeScalars.count
            let offsetsValid = tokens.allSatisfy { 0 <= $0.start && $0.start < $0.end && $0.end <= scalarCount }
                && zip(tokens, tokens.dropFirst()).allSatisfy { $0.start <= $1.start && $0.end <= $1.end }
                && (tokens.first?.start ?? 0) == 0 && (tokens.last?.end ?? 0) == scalarCount
            let problems = [
                ids != tokenizer.encode(text, allowSpecialTokens: allowSpecial) ? "encode and encodeWithOffsets differ" : nil,
                Array(decoded.unicodeScalars) != Array(text.unicodeScalars) ? "round trip gave \(describe(decoded))" : nil,
                Array(streamed.unicodeScalars) != Array(decoded.unicodeScalars) ? "stream gave \(describe(streamed))" : nil,
                offsetsValid ? nil : "offsets \(tokens.map { [$0.start, $0.end] }.prefix(8))",
            ].compactMap { $0 }
            if !problems.isEmpty {
                failures += 1
                if failures <= 5 { XCTFail("\(describe(text)): \(problems.joined(separator: "; "))") }
            }
        }
        XCTAssertEqual(failures, 0)
    }

    func testEveryIDDecodesToItsBytes() {
        let tokenizer = Fixtures.gpt2
        for id in 0..<tokenizer.vocabularySize {
            guard let bytes = tokenizer.bytes(of: id), !bytes.isEmpty else { return XCTFail("id \(id) has no bytes") }
            XCTAssertEqual(tokenizer.decode([id]), String(decoding: bytes, as: UTF8.self))
        }
    }
}
