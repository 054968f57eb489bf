import Foundation
import XCTest
@testable import GPTNeo

/// `convert` round trips and the Hugging Face cache layout.
final class CheckpointConvertAndCacheTests: XCTestCase {
    var temporary: TemporaryCheckpoint!
    override func setUpWithError() throws { temporary = try TemporaryCheckpoint() }
    override func tearDown() { temporary.remove() }

    func logits(_ directory: URL) throws -> [Float] {
        try CheckpointFormatTests.forward(try GPTNeoModel.load(directory: directory))
    }

    // MARK: convert

    func testConvertRoundTripIsBitwise() throws {
        let reference = try logits(CheckpointFormatTests.directory.appendingPathComponent("f32"))
        for (source, dtype) in [("bin", TensorDType.f32), ("bin-sharded", .bf16), ("f32", .f16)] {
            let destination = temporary.directory.appendingPathComponent("\(source)-\(dtype.rawValue)")
            let summary = try CheckpointConverter.convert(from: CheckpointFormatTests.directory.appendingPathComponent(source),
                                                          to: destination, dtype: dtype)
            XCTAssertEqual(summary.shards, ["model.safetensors"])
            let file = try SafeTensorsFile(path: destination.appendingPathComponent("model.safetensors").path)
            XCTAssertTrue(file.tensors.values.allSatisfy { $0.dtype == dtype }, source)
            XCTAssertNil(file.tensors["lm_head.weight"], "a tied lm_head is left out, as transformers saves")
            assertBitwiseEqual(try logits(destination), reference, "\(source) converted to \(dtype)")
        }
    }

    func testConvertShardsPastTheLimitAndCopiesTokenizerFiles() throws {
        let destination = temporary.directory.appendingPathComponent("tiny")
        var reports: [(Int, Int)] = []
        let summary = try CheckpointConverter.convert(from: tinyCheckpoint, to: destination, dtype: .f32, maxShardBytes: 4_000_000) {
            reports.append(($0, $1))
        }
        // wte (12.9 MB in F32) exceeds the limit alone and gets its own shard; everything else fits the second.
        XCTAssertEqual(summary.shards, ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
        XCTAssertEqual(reports.last.map { $0.0 == $0.1 }, true, "progress reaches the total")
        for name in ["config.json", "generation_config.json", "vocab.json", "merges.txt", "model.safetensors.index.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: destination.appendingPathComponent(name).path), name)
        }
        // The F16 fixture widened to F32 computes the same bits.
        let engine = GPTNeoEngine(model: try GPTNeoModel.load(directory: destination))
        let original = GPTNeoEngine(model: Shared.model)
        let tokens = Array(Shared.expected.cases[4].tokens.prefix(12))
        assertBitwiseEqual(try engine.forward([ForwardItem(cache: engine.makeCache(capacity: 12), tokens: tokens)])[0].logits,
                           try original.forward([ForwardItem(cache: original.makeCache(capacity: 12), tokens: tokens)])[0].logits, "F16 → F32")
        XCTAssertThrowsError(try CheckpointConverter.convert(from: tinyCheckpoint, to: destination, dtype: .f32)) {
            XCTAssertEqual($0 as? ConversionError, .destinationExists(path: destination.path))
        }
    }

    func testBFloat16RoundingIsToNearestEven() {
        XCTAssertEqual(SafeTensorsWriter.bfloat16Bits(1.0), 0x3F80)
        XCTAssertEqual(SafeTensorsWriter.bfloat16Bits(Float(bitPattern: 0x3F80_8000)), 0x3F80)  // tie → even
        XCTAssertEqual(SafeTensorsWriter.bfloat16Bits(Float(bitPattern: 0x3F81_8000)), 0x3F82)  // tie → even
        XCTAssertEqual(SafeTensorsWriter.bfloat16Bits(Float(bitPattern: 0x3F80_8001)), 0x3F81)
        XCTAssertEqual(SafeTensorsWriter.bfloat16Bits(.nan), 0x7FC0)
        XCTAssertEqual(SafeTensorsWriter.bfloat16Bits(.infinity), 0x7F80)
    }

    // MARK: Hugging Face cache

    /// `<home>/hub/models--owner--tiny` as huggingface_hub writes it: files in blobs/ named by hash,
    /// snapshots/<commit>/ of relative symlinks, refs/main holding the commit.
    func makeCache(home: URL, commit: String = "0123456789abcdef0123456789abcdef01234567") throws -> URL {
        let fm = FileManager.default
        let repository = home.appendingPathComponent("hub/models--owner--tiny")
        let snapshot = repository.appendingPathComponent("snapshots/\(commit)")
        try fm.createDirectory(at: repository.appendingPathComponent("blobs"), withIntermediateDirectories: true)
        try fm.createDirectory(at: repository.appendingPathComponent("refs"), withIntermediateDirectories: true)
        try fm.createDirectory(at: snapshot, withIntermediateDirectories: true)
        for (i, name) in ["config.json", "model.safetensors", "vocab.json", "merges.txt"].enumerated() {
            let blob = "blob\(i)"
            try fm.copyItem(at: tinyCheckpoint.appendingPathComponent(name), to: repository.appendingPathComponent("blobs/\(blob)"))
            try fm.createSymbolicLink(atPath: snapshot.appendingPathComponent(name).path, withDestinationPath: "../../blobs/\(blob)")
        }
        try Data(commit.utf8).write(to: repository.appendingPathComponent("refs/main"))
        return snapshot
    }

    func testRepoIDResolvesThroughRefsToASnapshotOfSymlinks() throws {
        let home = temporary.directory.appendingPathComponent("hf-home")
        let snapshot = try makeCache(home: home)
        let environment = ["HF_HOME": home.path, "HOME": "/nonexistent"]
        let resolved = try HubCache.snapshot(repoID: "owner/tiny", environment: environment)
        XCTAssertEqual(resolved.path, snapshot.path)
        assertBitwiseEqual(try CheckpointFormatTests.forward(try GPTNeoModel.load(directory: resolved)),
                           try CheckpointFormatTests.forward(Shared.model), "model through the cache's symlinks")
        // A commit hash works as a revision; HF_HUB_CACHE wins over HF_HOME; XDG_CACHE_HOME is used without either.
        XCTAssertEqual(try HubCache.snapshot(repoID: "owner/tiny", revision: snapshot.lastPathComponent, environment: environment).path, snapshot.path)
        XCTAssertEqual(HubCache.cacheDirectory(environment: ["HF_HUB_CACHE": "/a", "HF_HOME": "/b"]).path, "/a")
        XCTAssertEqual(HubCache.cacheDirectory(environment: ["XDG_CACHE_HOME": "/x"]).path, "/x/huggingface/hub")
        XCTAssertEqual(HubCache.cacheDirectory(environment: ["HOME": "/home/u"]).path, "/home/u/.cache/huggingface/hub")
    }

    func testMissingRepoSaysWhereItLookedAndHowToDownload() throws {
        let home = temporary.directory.appendingPathComponent("hf-home")
        _ = try makeCache(home: home)
        XCTAssertThrowsError(try HubCache.snapshot(repoID: "EleutherAI/gpt-neo-125m", environment: ["HF_HOME": home.path])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(home.path + "/hub/models--EleutherAI--gpt-neo-125m/refs/main"), text)
            XCTAssertTrue(text.contains(home.path + "/hub/models--EleutherAI--gpt-neo-125m/snapshots/main"), text)
            XCTAssertTrue(text.hasSuffix("Download it with: hf download EleutherAI/gpt-neo-125m"), text)
        }
        XCTAssertThrowsError(try HubCache.snapshot(repoID: "owner/tiny", revision: "v2", environment: ["HF_HOME": home.path])) {
            XCTAssertTrue("\($0)".hasSuffix("hf download owner/tiny --revision v2"), "\($0)")
        }
        XCTAssertThrowsError(try HubCache.snapshot(repoID: "owner/tiny", revision: "../../etc", environment: ["HF_HOME": home.path]))
    }

    func testWhatLooksLikeARepoID() {
        for good in ["EleutherAI/gpt-neo-125m", "a/b", "owner/name_v1.5"] { XCTAssertTrue(HubCache.isRepoID(good), good) }
        for bad in ["gpt-neo", "/abs/path", "a/b/c", "../x", "a/..", "a--b/c", "./m", "owner/", "a b/c"] { XCTAssertFalse(HubCache.isRepoID(bad), bad) }
    }
}
