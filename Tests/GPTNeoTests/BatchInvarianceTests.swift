import Foundation
import XCTest
@testable import GPTNeo

/// An item's outputs are bitwise the same whatever other items share the forward call. Subclasses run
/// every case with the weights in another storage format (CompactWeightTests.swift).
class BatchInvarianceTests: XCTestCase {
    var model: GPTNeoModel { Shared.model }
    var tokens: [Int] { Shared.expected.cases.last!.tokens }

    /// Runs `probe` chunk by chunk (`chunks` sizes), alone or with `companions` (lengths of other items
    /// fed alongside at every call); returns the probe's hidden states and logits of every row.
    func run(chunks: [Int], companions: [Int], engine: GPTNeoEngine) throws -> (hidden: [Float], logits: [Float]) {
        let probe = engine.makeCache(capacity: 100)
        var hidden: [Float] = [], logits: [Float] = []
        var start = 0
        for (step, size) in chunks.enumerated() {
            var items = [ForwardItem(cache: probe, tokens: Array(tokens[start..<(start + size)]), hiddenRows: .all, logitRows: .all)]
            // Companions of other lengths, at other positions, before and after the probe.
            for (i, length) in companions.enumerated() {
                let cache = engine.makeCache(capacity: 64)
                if (i + step) % 2 == 0 { _ = try engine.forward([ForwardItem(cache: cache, tokens: Array(tokens.suffix(5 + i)), logitRows: .none)]) }
                let item = ForwardItem(cache: cache, tokens: Array(tokens[(7 * i)..<(7 * i + length)]), hiddenRows: .last, logitRows: i % 3 == 0 ? .all : .last)
                if i % 2 == 0 { items.insert(item, at: 0) } else { items.append(item) }
            }
            let outputs = try engine.forward(items)
            let index = items.firstIndex { $0.cache === probe }!
            hidden += outputs[index].hidden; logits += outputs[index].logits
            start += size
        }
        return (hidden, logits)
    }

    func assertInvariant(chunks: [Int], file: StaticString = #filePath, line: UInt = #line) throws {
        let engine = GPTNeoEngine(model: model)
        let alone = try run(chunks: chunks, companions: [], engine: engine)
        for companions in [[1], [1, 1, 1, 1, 1, 1, 1], [3, 20, 1], [8, 9, 2, 30, 1, 5]] {
            let together = try run(chunks: chunks, companions: companions, engine: engine)
            assertBitwiseEqual(together.hidden, alone.hidden, "hidden, chunks \(chunks), companions \(companions)", file: file, line: line)
            assertBitwiseEqual(together.logits, alone.logits, "logits, chunks \(chunks), companions \(companions)", file: file, line: line)
        }
    }

    /// Decode steps (one token each) among 1 to 30 other rows.
    func testDecodeStepsAreBatchInvariant() throws {
        try assertInvariant(chunks: [Int](repeating: 1, count: 12))
    }

    /// Prefill chunks of many lengths among other items' chunks.
    func testPrefillChunksAreBatchInvariant() throws {
        try assertInvariant(chunks: [5, 8, 20, 1, 13, 3])
    }

    /// A decode step of every batch size 1…64: the probe's row lands at every position of the matmul's
    /// row tiles (6-row tiles, then 1 to 5 remaining rows) and gives the bits it gives alone.
    func testDecodeStepOfEveryBatchSizeUpTo64() throws {
        let engine = GPTNeoEngine(model: model)
        let prefix = Array(tokens.prefix(9))
        func probeStep(companions: Int, probeIndex: Int) throws -> ForwardOutput {
            var caches: [KVCache] = []
            var prefills: [ForwardItem] = []
            for i in 0...companions {
                let cache = engine.makeCache(capacity: 16)
                caches.append(cache)
                // The probe has the same 9-token history in every run; companions vary in length.
                prefills.append(ForwardItem(cache: cache, tokens: i == probeIndex ? prefix : Array(tokens.suffix(1 + i % 7)), logitRows: .none))
            }
            _ = try engine.forward(prefills)
            let step = caches.indices.map { ForwardItem(cache: caches[$0], tokens: [tokens[20 + $0 % 50]], hiddenRows: .last, logitRows: .last) }
            var items = step
            items[probeIndex] = ForwardItem(cache: caches[probeIndex], tokens: [tokens[10]], hiddenRows: .last, logitRows: .last)
            return try engine.forward(items)[probeIndex]
        }
        let alone = try probeStep(companions: 0, probeIndex: 0)
        for rows in 2...64 {
            let together = try probeStep(companions: rows - 1, probeIndex: rows * 7 / 11)
            assertBitwiseEqual(together.hidden, alone.hidden, "hidden, \(rows) rows")
            assertBitwiseEqual(together.logits, alone.logits, "logits, \(rows) rows")
        }
    }

    /// Chunking does not matter either: one 100-token forward and chunks of every length 1…99 (1 being
    /// token-by-token decoding; every row count mod the 6-row tile, and chunks that leave a short last
    /// one) give the same bits: attention visits keys in the same order from cache or chunk, and the
    /// matmul does not depend on the row count. Every row's hidden state is compared, and the logits of
    /// each chunk's last row.
    func testPrefillChunksOfEveryLengthGiveTheSameBits() throws {
        let engine = GPTNeoEngine(model: model)
        let vocab = model.config.vocabSize
        let whole = try engine.forward([ForwardItem(cache: engine.makeCache(capacity: 100), tokens: tokens, hiddenRows: .all, logitRows: .all)])[0]
        for length in 1..<tokens.count {
            let cache = engine.makeCache(capacity: 100)
            var hidden: [Float] = []
            while cache.count < tokens.count {
                let end = min(tokens.count, cache.count + length)
                let out = try engine.forward([ForwardItem(cache: cache, tokens: Array(tokens[cache.count..<end]), hiddenRows: .all, logitRows: .last)])[0]
                hidden += out.hidden
                assertBitwiseEqual(out.logits, Array(whole.logits[((end - 1) * vocab)..<(end * vocab)]), "logits of row \(end - 1), chunks of \(length)")
            }
            assertBitwiseEqual(hidden, whole.hidden, "hidden, chunks of \(length)")
        }
    }

    /// The thread count does not change any value.
    func testThreadCountDoesNotChangeResults() throws {
        let reference = try GPTNeoEngine(model: model, threads: 1)
            .forward([ForwardItem(cache: GPTNeoEngine(model: model).makeCache(capacity: 100), tokens: tokens, hiddenRows: .all, logitRows: .all)])[0]
        for threads in [2, 3, 8] {
            let engine = GPTNeoEngine(model: model, threads: threads)
            let out = try engine.forward([ForwardItem(cache: engine.makeCache(capacity: 100), tokens: tokens, hiddenRows: .all, logitRows: .all)])[0]
            assertBitwiseEqual(out.hidden, reference.hidden, "hidden, \(threads) threads")
            assertBitwiseEqual(out.logits, reference.logits, "logits, \(threads) threads")
        }
    }
}
