import XCTest
@testable import Tokenizer

/// The stages on their own: character classes, pre-tokenizer pieces, BPE, cache, added tokens.
final class PipelineStageTests: XCTestCase {
    // MARK: - Character classes

    func testEveryCodePointHasHuggingFacesClass() {
        var expected: [UInt32: CharacterClass] = [:]
        var covered = 0
        var failures = 0
        for run in Fixtures.golden.character_classes {
            guard run.count == 3, case let .number(first) = run[0], case let .number(count) = run[1],
                  case let .name(name) = run[2] else { return XCTFail("bad run \(run)") }
            let kind: CharacterClass = ["L": .letter, "N": .number, "W": .whitespace][name] ?? .other
            covered += count
            for value in first..<(first + count) {
                guard let scalar = Unicode.Scalar(UInt32(value)) else { continue }
                let got = CharacterClass(scalar)
                if got != kind {
                    failures += 1
                    if failures <= 10 {
                        XCTFail("U+\(String(value, radix: 16, uppercase: true)): \(got), HF says \(kind)")
                    }
                }
            }
            expected[UInt32(first)] = kind
        }
        XCTAssertEqual(covered, 0x110000 - 0x800, "the runs must cover every non-surrogate code point")
        XCTAssertEqual(failures, 0, "\(failures) code points classed unlike HF")
    }

    // MARK: - Pre-tokenizer

    private func pieces(_ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        let classes = scalars.map(CharacterClass.init)
        var result: [String] = []
        scalars.withUnsafeBufferPointer { scalarBuffer in
            classes.withUnsafeBufferPointer { classBuffer in
                PreTokenizer.forEachPiece(scalars: scalarBuffer, classes: classBuffer, range: 0..<scalars.count) { start, end in
                    var piece = String.UnicodeScalarView()
                    piece.append(contentsOf: scalars[start..<end])
                    result.append(String(piece))
                }
            }
        }
        return result
    }

    func testPiecesFollowGPT2Pattern() {
        XCTAssertEqual(pieces("Hello world"), ["Hello", " world"])
        XCTAssertEqual(pieces("  a  b "), [" ", " a", " ", " b", " "])
        XCTAssertEqual(pieces("it's IT'S"), ["it", "'s", " IT", "'", "S"])
        XCTAssertEqual(pieces("x''s"), ["x", "''", "s"])
        XCTAssertEqual(pieces("a\n\n b"), ["a", "\n\n", " b"])
        XCTAssertEqual(pieces("a\n\nb"), ["a", "\n", "\n", "b"])
        XCTAssertEqual(pieces("abc123 !?"), ["abc", "123", " !?"])
        XCTAssertEqual(pieces("end  "), ["end", "  "])
        XCTAssertEqual(pieces(""), [])
    }

    // MARK: - BPE

    /// GPT-2's original loop: find the lowest-ranked pair, merge every occurrence left to right, repeat.
    private func referenceBPE(_ ids: [Int32], merges: [BytePair: Merge]) -> [Int32] {
        var symbols = ids
        while symbols.count > 1 {
            var best: (rank: Int32, pair: BytePair, result: Int32)?
            for index in 0..<(symbols.count - 1) {
                let pair = BytePair(left: symbols[index], right: symbols[index + 1])
                if let merge = merges[pair], merge.rank < (best?.rank ?? .max) { best = (merge.rank, pair, merge.result) }
            }
            guard let (_, pair, result) = best else { break }
            var merged: [Int32] = []
            var index = 0
            while index < symbols.count {
                if index + 1 < symbols.count, symbols[index] == pair.left, symbols[index + 1] == pair.right {
                    merged.append(result)
                    index += 2
                } else {
                    merged.append(symbols[index])
                    index += 1
                }
            }
            symbols = merged
        }
        return symbols
    }

    func testHeapBPEMatchesGPT2sOriginalLoop() {
        let vocabulary = Fixtures.gpt2.vocabulary
        var generator = SplitMix64(seed: 11)
        let alphabet = Array("aaabeeilnorsst ".utf8) + [0xE4, 0xB8, 0xAD, 0xF0, 0x9F]
        var words: [[UInt8]] = Fixtures.golden.cases.prefix(200).flatMap { $0.text.split(separator: " ").map { Array($0.utf8) } }
        for _ in 0..<500 {
            let length = Int(generator.next() % 30) + 1
            words.append((0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
        }
        let merges = vocabulary.encoder.merges.dictionary
        for word in words {
            let ids = word.map { vocabulary.byteTokenIDs[Int($0)] }
            let got = vocabulary.encoder.encode(ids)
            let expected = referenceBPE(ids, merges: merges)
            if got != expected { return XCTFail("\(word): heap \(got), reference \(expected)") }
        }
    }

    func testVeryLongPieceIsNotQuadratic() {
        // 200k letters in one piece: a quadratic BPE would take minutes here.
        let text = String(repeating: "abcdefghij", count: 20_000)
        let start = ContinuousClock.now
        let ids = Fixtures.gpt2.encode(text)
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(20))
        XCTAssertEqual(Fixtures.gpt2.decode(ids), text)
    }

    // MARK: - Concurrency

    func testConcurrentEncodingGivesTheSameIDs() async {
        let tokenizer = try! GPT2Tokenizer.load(vocabulary: Fixtures.vocabularyJSON, merges: Fixtures.mergesText)
        let cases = Array(Fixtures.golden.cases.prefix(400))
        let failures = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var failures = 0
                    for (index, golden) in cases.enumerated() where index % 2 == worker % 2 || worker >= 4 {
                        if tokenizer.encode(golden.text, allowSpecialTokens: golden.allow_special) != golden.ids { failures += 1 }
                    }
                    return failures
                }
            }
            return await group.reduce(0, +)
        }
        XCTAssertEqual(failures, 0)
    }

    func testCacheHoldsNeitherHugePiecesNorMoreThanItsCapacity() {
        let tokenizer = GPT2Tokenizer(vocabulary: Fixtures.gpt2.vocabulary, cacheCapacity: 50)
        _ = tokenizer.encode(String(repeating: "x", count: 10_000) + " " + String(repeating: "\n", count: 5_000))
        XCTAssertEqual(tokenizer.cache.count, 0, "pieces over \(WordCache.maximumPieceLength) bytes are not cached")
        _ = tokenizer.encode((0..<500).map { "word\($0)x" }.joined(separator: " "))
        XCTAssertLessThanOrEqual(tokenizer.cache.count, 50)
        XCTAssertGreaterThan(tokenizer.cache.count, 0)
    }

    func testBoundedCacheStillEncodesCorrectly() {
        let tokenizer = GPT2Tokenizer(vocabulary: Fixtures.gpt2.vocabulary, cacheCapacity: 3)
        for golden in Fixtures.golden.cases.prefix(100) {
            XCTAssertEqual(tokenizer.encode(golden.text, allowSpecialTokens: golden.allow_special), golden.ids)
        }
    }

    // MARK: - Added tokens

    func testSpecialTokenOnlyWhenAllowed() {
        let tokenizer = Fixtures.gpt2
        XCTAssertEqual(tokenizer.encode("a<|endoftext|>b", allowSpecialTokens: true), [64, 50256, 65])
        XCTAssertFalse(tokenizer.encode("a<|endoftext|>b").contains(50256))
        XCTAssertEqual(tokenizer.decode(tokenizer.encode("a<|endoftext|>b")), "a<|endoftext|>b")
    }

    func testMergeTableFindsEveryMergeAndNothingElse() {
        var source: [BytePair: Merge] = [:]
        var generator = SplitMix64(seed: 5)
        for rank in 0..<3000 {
            // Few left ids, so that groups are long; some pairs repeat and keep their first merge.
            let pair = BytePair(left: Int32(generator.next() % 40), right: Int32(generator.next() % 5000))
            if source[pair] == nil { source[pair] = Merge(rank: Int32(rank), result: Int32(10_000 + rank)) }
        }
        let table = MergeTable(source)
        XCTAssertEqual(table.count, source.count)
        for (pair, merge) in source {
            XCTAssertEqual(table.merge(of: pair)?.rank, merge.rank, "\(pair)")
            XCTAssertEqual(table.merge(of: pair)?.result, merge.result, "\(pair)")
        }
        for _ in 0..<3000 {
            let pair = BytePair(left: Int32(generator.next() % 60) - 10, right: Int32(generator.next() % 5000))
            if source[pair] == nil { XCTAssertNil(table.merge(of: pair), "\(pair)") }
        }
        XCTAssertEqual(table.dictionary.mapValues { [$0.rank, $0.result] }, source.mapValues { [$0.rank, $0.result] })
        XCTAssertNil(MergeTable([:]).merge(of: BytePair(left: 0, right: 0)))
    }

    func testTokenByteTableKeepsEveryTokenAndTellsUnusedIdsFromEmptyOnes() {
        let tokens: [[UInt8]?] = [[0x41], nil, [], [0xC3, 0xA9, 0x20], nil]
        let table = TokenByteTable(tokens)
        XCTAssertEqual(table.count, 5)
        for (id, token) in tokens.enumerated() {
            XCTAssertEqual(table.bytes(of: id).map(Array.init), token, "id \(id)")
        }
        XCTAssertNil(table.bytes(of: -1))
        XCTAssertNil(table.bytes(of: 5))
    }

    func testNonSpecialAddedTokensAreAlwaysMatchedAndStripsAbsorbWhitespace() throws {
        let base = Fixtures.gpt2.vocabulary
        var idOfBytes: [[UInt8]: Int32] = [:]
        for id in 0..<min(base.tokenBytes.count, 50256) { if let bytes = base.bytes(of: id) { idOfBytes[Array(bytes)] = Int32(id) } }
        let added = [
            AddedToken(content: "<|endoftext|>", id: 50256, special: true),
            AddedToken(content: "[MASK]", id: 50257, special: false, leftStrip: true, rightStrip: false),
            AddedToken(content: "[MASK2]", id: 50258, special: false),
        ]
        let vocabulary = try Vocabulary(path: "test", idOfBytes: idOfBytes, merges: base.encoder.merges.dictionary, addedTokens: added)
        let tokenizer = GPT2Tokenizer(vocabulary: vocabulary)
        XCTAssertEqual(tokenizer.vocabularySize, 50259)
        let tokens = tokenizer.encodeWithOffsets("a  [MASK] b[MASK2]")
        XCTAssertEqual(tokens.map(\.id), [64, 50257, 275, 50258])
        XCTAssertEqual(tokens.map { [$0.start, $0.end] }, [[0, 1], [1, 9], [9, 11], [11, 18]])
        XCTAssertEqual(tokenizer.decode([50257, 50258]), "[MASK][MASK2]")
    }
}
