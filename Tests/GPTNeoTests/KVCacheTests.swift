import Foundation
import XCTest
@testable import GPTNeo

final class KVCacheTests: XCTestCase {
    let model = Shared.model
    var config: GPTNeoConfig { model.config }

    func testLocalLayersKeepExactlyTheWindow() throws {
        let engine = GPTNeoEngine(model: model)
        let tokens = Shared.expected.cases.last!.tokens  // 100 tokens, window 8
        let cache = engine.makeCache(capacity: tokens.count)
        for token in tokens { _ = try engine.forward([ForwardItem(cache: cache, tokens: [token])]) }
        for (layer, kind) in config.attentionLayers.enumerated() {
            XCTAssertEqual(cache.slotCount(layer: layer), kind == .local ? config.windowSize : tokens.count, "layer \(layer)")
        }
        // Global layers: 100 positions in blocks of 32 (128 slots); local layers: one block of the window.
        let C = config.hiddenSize
        let expectedBytes = 2 * C * 4 * (2 * 128 + 2 * config.windowSize)
        XCTAssertEqual(cache.byteSize, expectedBytes)
        XCTAssertEqual(KVCache.byteSize(config: config, capacity: tokens.count), expectedBytes, "admission reserves what a full cache holds")
        // Smaller than the window: local layers need only the capacity.
        XCTAssertEqual(KVCache(config: config, capacity: 3).slotCount(layer: 1), 3)
    }

    /// Memory follows use: nothing before the first token, then a block per layer every 32 positions.
    func testBlocksAreTakenAsPositionsArrive() throws {
        let engine = GPTNeoEngine(model: model)
        let tokens = Shared.expected.cases.last!.tokens
        let cache = engine.makeCache(capacity: 2048)
        XCTAssertEqual(cache.byteSize, 0)
        let C = config.hiddenSize, window = config.windowSize
        for (length, globalSlots) in [(5, 32), (32, 32), (33, 64), (100, 128)] {
            _ = try engine.forward([ForwardItem(cache: cache, tokens: Array(tokens[cache.count..<length]), logitRows: .none)])
            XCTAssertEqual(cache.byteSize, 2 * C * 4 * (2 * globalSlots + 2 * window), "after \(length) positions")
        }
        XCTAssertLessThan(cache.byteSize, KVCache.byteSize(config: config, capacity: 2048) / 10)
    }

    /// Freed blocks are kept up to the limit and handed out again; lowering the limit or trimming frees
    /// the excess.
    func testFreedBlocksAreKeptUpToTheLimitAndReused() {
        let pool = KVBlockPool()
        let floats = 4096, bytes = 4096 * 4
        pool.keptBytesLimit = 10 * bytes
        let blocks = (0..<12).map { _ in pool.take(floats: floats) }
        for block in blocks { pool.give(block, floats: floats) }
        XCTAssertEqual(pool.keptBytes, 10 * bytes, "the two past the limit are freed")
        let kept = Set(blocks.prefix(10))
        let again = pool.take(floats: floats)
        XCTAssertTrue(kept.contains(again), "a kept block is handed out again")
        XCTAssertEqual(pool.keptBytes, 9 * bytes)
        let otherSize = pool.take(floats: 2 * floats)
        XCTAssertEqual(pool.keptBytes, 9 * bytes, "blocks of another size are not taken for it")
        pool.give(again, floats: floats)
        pool.give(otherSize, floats: 2 * floats)
        XCTAssertEqual(pool.keptBytes, 10 * bytes, "at the limit: the larger block is freed")
        pool.keptBytesLimit = 3 * bytes
        XCTAssertEqual(pool.keptBytes, 3 * bytes, "a lower limit frees the excess")
        pool.trim(keeping: 0)
        XCTAssertEqual(pool.keptBytes, 0)
    }

    /// A server's setting reaches the process-wide pool, and an idle release keeps at most 64 MiB.
    func testTheSharedPoolFollowsTheSettingAndTheRelease() throws {
        let engine = GPTNeoEngine(model: model)
        let tokens = Shared.expected.cases.last!.tokens
        let saved = KVCache.keptFreedBlockBytes
        defer { KVCache.keptFreedBlockBytes = saved }
        KVCache.keptFreedBlockBytes = 1 << 30
        XCTAssertEqual(KVCache.keptFreedBlockBytes, 1 << 30)
        var cache: KVCache? = engine.makeCache(capacity: tokens.count)
        _ = try engine.forward([ForwardItem(cache: cache!, tokens: tokens, logitRows: .none)])
        let held = cache!.byteSize
        let before = KVBlockPool.shared.keptBytes
        cache = nil
        XCTAssertEqual(KVBlockPool.shared.keptBytes, before + held, "every block of the ended cache is kept (\(before), \(held))")
        KVCache.releaseKeptFreedBlocks()
        XCTAssertLessThanOrEqual(KVBlockPool.shared.keptBytes, 64 << 20)
        XCTAssertEqual(KVCache.keptFreedBlockBytes, 1 << 30, "the release keeps the setting")
        KVCache.keptFreedBlockBytes = 0
        XCTAssertEqual(KVBlockPool.shared.keptBytes, 0)
    }

    /// A copy continues exactly like the original (n > 1 choices from one prefilled prompt).
    func testCopyContinuesIdentically() throws {
        let engine = GPTNeoEngine(model: model)
        let tokens = Shared.expected.cases[5].tokens  // 40 tokens
        let original = engine.makeCache(capacity: 60)
        _ = try engine.forward([ForwardItem(cache: original, tokens: Array(tokens.prefix(30)))])
        let copy = original.copy(capacity: 45)
        XCTAssertEqual(copy.count, 30)
        let rest = Array(tokens.suffix(10))
        let a = try engine.forward([ForwardItem(cache: original, tokens: rest, logitRows: .all)])[0].logits
        let b = try engine.forward([ForwardItem(cache: copy, tokens: rest, logitRows: .all)])[0].logits
        assertBitwiseEqual(b, a, "copy vs original")
    }

    func testResetStartsOver() throws {
        let engine = GPTNeoEngine(model: model)
        let tokens = Shared.expected.cases[4].tokens
        let cache = engine.makeCache(capacity: 20)
        let first = try engine.forward([ForwardItem(cache: cache, tokens: tokens)])[0].logits
        cache.reset()
        XCTAssertEqual(cache.count, 0)
        assertBitwiseEqual(try engine.forward([ForwardItem(cache: cache, tokens: tokens)])[0].logits, first, "after reset")
    }

    // MARK: Errors leave the caches untouched

    func testForwardErrors() throws {
        let engine = GPTNeoEngine(model: model)
        let cache = engine.makeCache(capacity: 10)
        let other = engine.makeCache(capacity: 10)
        _ = try engine.forward([ForwardItem(cache: cache, tokens: [1, 2, 3])])

        func assertFails(_ items: [ForwardItem], _ expected: EngineError, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try engine.forward(items), file: file, line: line) { error in
                XCTAssertEqual(error as? EngineError, expected, file: file, line: line)
            }
            XCTAssertEqual(cache.count, 3, "a failed call changes nothing", file: file, line: line)
            XCTAssertEqual(other.count, 0, file: file, line: line)
        }
        assertFails([ForwardItem(cache: other, tokens: [5]), ForwardItem(cache: cache, tokens: [50257])],
                    .tokenOutOfVocabulary(token: 50257, vocabSize: 50257))
        assertFails([ForwardItem(cache: cache, tokens: [-1])], .tokenOutOfVocabulary(token: -1, vocabSize: 50257))
        assertFails([ForwardItem(cache: other, tokens: [5]), ForwardItem(cache: cache, tokens: [Int](repeating: 7, count: 8))],
                    .cacheCapacityExceeded(requested: 11, capacity: 10))

        let big = engine.makeCache(capacity: config.maxPositionEmbeddings + 10)
        XCTAssertThrowsError(try engine.forward([ForwardItem(cache: big, tokens: [Int](repeating: 7, count: config.maxPositionEmbeddings + 1))])) { error in
            XCTAssertEqual(error as? EngineError, .contextTooLong(requested: config.maxPositionEmbeddings + 1, limit: config.maxPositionEmbeddings))
        }
        XCTAssertEqual(big.count, 0)

        // Another window, or another split of the same width into heads (blocks are laid out head by head).
        var otherWindow = config, otherHeads = config
        otherWindow.windowSize = 4
        otherHeads.numHeads = config.numHeads * 2
        for otherShape in [otherWindow, otherHeads] {
            XCTAssertThrowsError(try engine.forward([ForwardItem(cache: KVCache(config: otherShape, capacity: 4), tokens: [1])])) { error in
                guard case .cacheMismatch? = error as? EngineError else { return XCTFail("got \(error)") }
            }
        }
    }

    /// The full context works: max_position_embeddings tokens exactly.
    func testFullContextIsAccepted() throws {
        let engine = GPTNeoEngine(model: model)
        let cache = engine.makeCache(capacity: config.maxPositionEmbeddings)
        let tokens = (0..<config.maxPositionEmbeddings).map { ($0 * 7919) % config.vocabSize }
        let out = try engine.forward([ForwardItem(cache: cache, tokens: tokens)])
        XCTAssertEqual(out[0].logits.count, config.vocabSize)
        XCTAssertTrue(out[0].logits.allSatisfy(\.isFinite))
        XCTAssertThrowsError(try engine.forward([ForwardItem(cache: cache, tokens: [1])]))
    }
}
