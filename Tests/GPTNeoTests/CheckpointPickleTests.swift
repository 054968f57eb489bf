import Foundation
import XCTest
@testable import GPTNeo

/// pytorch_model.bin is never executed: malicious pickles stop at their global, malformed archives and
/// pickles give an error naming the file and the problem, and nothing traps.
final class CheckpointPickleTests: XCTestCase {
    var temporary: TemporaryCheckpoint!
    override func setUpWithError() throws { temporary = try TemporaryCheckpoint() }
    override func tearDown() { temporary.remove() }

    var binPath: String { temporary.directory.appendingPathComponent("pytorch_model.bin").path }

    func open(_ bytes: [UInt8]) throws -> PyTorchFile {
        try temporary.write("pytorch_model.bin", bytes)
        return try PyTorchFile(path: binPath)
    }

    func assertFails(_ bytes: [UInt8], _ matches: (EngineError) -> Bool, _ what: String, line: UInt = #line) {
        XCTAssertThrowsError(try open(bytes), what, line: line) { error in
            guard let error = error as? EngineError, matches(error) else { return XCTFail("\(what): got \(error)", line: line) }
            XCTAssertTrue(error.description.hasPrefix(self.binPath), "\(what): the message names the file", line: line)
            print("\(what): \(error)")
        }
    }

    // MARK: Malicious pickles

    /// Each payload would create `marker` if unpickled by Python (`pickle.loads`); loading must refuse it
    /// at the global, through the server's loader, and the marker must not exist afterwards.
    func testMaliciousPicklesAreRefusedNamingTheGlobalAndNothingRuns() throws {
        let marker = temporary.directory.appendingPathComponent("marker").path
        let command = "touch \(marker)"
        let payloads: [(global: String, arguments: String)] = [
            ("os.system", "(V\(command)\ntR."),
            ("posix.system", "(V\(command)\ntR."),
            ("builtins.eval", "(V__import__('os').system('\(command)')\ntR."),
            ("subprocess.Popen", "((Vtouch\nV\(marker)\nltR."),
        ]
        try temporary.writeConfig(TinyCheckpointSource.configText)
        for payload in payloads {
            let parts = payload.global.split(separator: ".").map(String.init)
            // Protocol 0: GLOBAL names the callable in text.
            let protocol0 = Array("c\(parts[0])\n\(parts[1])\n\(payload.arguments)".utf8)
            // Protocol 4: STACK_GLOBAL takes module and name from the stack.
            let short: (String) -> [UInt8] = { [0x8C, UInt8($0.utf8.count)] + Array($0.utf8) + [0x94] }
            let protocol4 = [0x80, 0x04] + short(parts[0]) + short(parts[1]) + [0x93, 0x94] + Array(payload.arguments.utf8)
            for (style, pickle) in [("protocol 0 GLOBAL", protocol0), ("protocol 4 STACK_GLOBAL", protocol4)] {
                try temporary.write("pytorch_model.bin", torchArchive(pickle: pickle, storages: [:]))
                XCTAssertThrowsError(try GPTNeoModel.load(directory: temporary.directory), style) { error in
                    XCTAssertEqual(error as? EngineError, .forbiddenGlobal(path: self.binPath, global: payload.global), style)
                    print("\(payload.global) via \(style): \(error)")
                }
                XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "\(payload.global) via \(style) ran")
            }
        }
    }

    func testOtherOpcodesAreRefusedByName() {
        // INST (protocol 0's class instantiation) and NEWOBJ are never in a state dict.
        assertFails(torchArchive(pickle: [0x80, 0x02] + Array("icollections\nOrderedDict\n".utf8), storages: [:]),
                    { if case .forbiddenOpcode(_, 2, let name) = $0 { return name.hasPrefix("INST") }; return false }, "INST")
        assertFails(torchArchive(pickle: [0x80, 0x02, 0x81], storages: [:]),
                    { if case .forbiddenOpcode(_, 2, let name) = $0 { return name.hasPrefix("NEWOBJ") }; return false }, "NEWOBJ")
    }

    // MARK: Good hand-built archives

    func testHandBuiltStateDictWithOffsetsAndStrides() throws {
        let storage = littleEndianBytes((0..<12).map(Float.init))
        let pickle = PickleOps.stateDict([
            ("whole", PickleOps.tensor(key: "0", elements: 12, offset: 0, shape: [3, 4], strides: [4, 1])),
            ("transposed", PickleOps.tensor(key: "0", elements: 12, offset: 0, shape: [4, 3], strides: [1, 4])),
            ("row", PickleOps.tensor(key: "0", elements: 12, offset: 8, shape: [4], strides: [1])),
            ("scalar", PickleOps.tensor(key: "0", elements: 12, offset: 11, shape: [], strides: [])),
        ])
        let file = try open(torchArchive(pickle: pickle, storages: ["0": storage], folder: "any-folder-name"))
        XCTAssertEqual(try file.floatTensor("whole").array, (0..<12).map(Float.init))
        XCTAssertEqual(try file.floatTensor("transposed").array, [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11])
        XCTAssertEqual(try file.floatTensor("row").array, [8, 9, 10, 11])
        XCTAssertEqual(try file.floatTensor("scalar").array, [11])
    }

    func testZIP64ArchiveAsWrittenPast4GiB() throws {
        let pickle = PickleOps.stateDict([("w", PickleOps.tensor(key: "0", elements: 3, offset: 1, shape: [2], strides: [1]))])
        let file = try open(torchArchive(pickle: pickle, storages: ["0": littleEndianBytes([1, 2, 3])], zip64: true))
        XCTAssertEqual(try file.floatTensor("w").array, [2, 3])
    }

    // MARK: Malformed archives

    func testTruncatedArchivesFailCleanlyAtEveryLength() throws {
        let whole = try [UInt8](Data(contentsOf: fixturesDirectory.appendingPathComponent("checkpoints/bin/pytorch_model.bin")))
        var cut = 0
        while cut < whole.count {
            XCTAssertThrowsError(try open(Array(whole.prefix(cut))), "cut at \(cut)")
            cut += cut < 256 ? 1 : 8191
        }
        assertFails(Array(whole.prefix(whole.count - 10)), { if case .malformedArchive = $0 { return true }; return false }, "cut in the end record")
    }

    func testMissingAndShortStorages() {
        let pickle = PickleOps.stateDict([("w", PickleOps.tensor(key: "0", elements: 4, offset: 2, shape: [2, 2], strides: [2, 1]))])
        assertFails(torchArchive(pickle: pickle, storages: [:]),
                    { if case .malformedTensor(_, "w", let r) = $0 { return r.contains("data/0 is not in the archive") }; return false }, "missing storage")
        assertFails(torchArchive(pickle: pickle, storages: ["0": littleEndianBytes([1, 2])]),
                    { if case .malformedTensor(_, "w", let r) = $0 { return r.contains("declares 4") }; return false }, "storage shorter than numel")
        // numel honest, but offset 2 + 4 elements reaches past the 4-element storage.
        assertFails(torchArchive(pickle: pickle, storages: ["0": littleEndianBytes([1, 2, 3, 4])]),
                    { if case .tensorOutOfBounds(_, "w", 8, 24, 16) = $0 { return true }; return false }, "view past the storage")
        // A zero stride: 2^40 elements from one stored float would be a 4 TiB allocation when read.
        let broadcast = PickleOps.stateDict([("w", PickleOps.tensor(key: "0", elements: 4, offset: 0, shape: [1 << 40], strides: [0]))])
        assertFails(torchArchive(pickle: broadcast, storages: ["0": littleEndianBytes([1, 2, 3, 4])]),
                    { if case .malformedTensor(_, "w", let r) = $0 { return r.contains("more than its 16-byte storage holds") }; return false },
                    "zero stride")
        let hostile = PickleOps.stateDict([("w", PickleOps.tensor(key: "0", elements: 4, offset: 0, shape: [1 << 31, 1 << 31], strides: [1 << 31, 1]))])
        assertFails(torchArchive(pickle: hostile, storages: ["0": littleEndianBytes([1, 2, 3, 4])]),
                    { if case .malformedTensor = $0 { return true }; if case .tensorOutOfBounds = $0 { return true }; return false }, "overflowing shape")
    }

    func testMalformedPickles() {
        func archive(_ pickle: [UInt8]) -> [UInt8] { torchArchive(pickle: pickle, storages: ["0": littleEndianBytes([1])]) }
        func pickleError(_ text: String) -> (EngineError) -> Bool {
            { if case .malformedPickle(_, _, let reason) = $0 { return reason.contains(text) }; return false }
        }
        let good = PickleOps.stateDict([("w", PickleOps.tensor(key: "0", elements: 1, offset: 0, shape: [1], strides: [1]))])
        assertFails(archive(Array(good.dropLast(3))), pickleError("ends early"), "pickle that ends early")
        assertFails(archive([0x80, 0x02, 0x68, 0x07, 0x2E]), pickleError("refers to nothing"), "memo reference to nothing")
        // 100 nested tuples.
        assertFails(archive([0x80, 0x02, 0x29] + [UInt8](repeating: 0x85, count: 100) + [0x2E]), pickleError("deeper"), "depth bomb")
        // A million and more items on the stack.
        assertFails(archive([0x80, 0x02] + [UInt8](repeating: 0x4E, count: (1 << 20) + 1)), pickleError("stack exceeds"), "stack bomb")
        assertFails(archive([0x80, 0x02, 0x58, 0xFF, 0xFF, 0xFF, 0x7F]), pickleError("exceeds the rest"), "string longer than the pickle")
        assertFails(archive([0x80, 0x09]), pickleError("protocol 9"), "unknown protocol")
        let twice = PickleOps.stateDict([("w", PickleOps.tensor(key: "0", elements: 1, offset: 0, shape: [1], strides: [1])),
                                         ("w", PickleOps.tensor(key: "0", elements: 1, offset: 0, shape: [1], strides: [1]))])
        assertFails(archive(twice), pickleError("appears twice"), "duplicate key")
        assertFails(archive([0x80, 0x02, 0x4E, 0x2E]), pickleError("not a state dict"), "not a dict")
        assertFails(archive([0x80, 0x02] + PickleOps.global("torch", "FloatStorage") + [0x29, 0x52, 0x2E]), pickleError("storage type is called"), "storage called")
        assertFails(archive([0x80, 0x02] + PickleOps.global("torch", "Tensor") + [0x2E]),
                    { $0 == .forbiddenGlobal(path: self.binPath, global: "torch.Tensor") }, "torch.Tensor")
    }

    func testMalformedArchiveStructure() throws {
        let good = torchArchive(pickle: PickleOps.stateDict([]), storages: [:])
        _ = try open(good)
        func archiveError(_ text: String) -> (EngineError) -> Bool {
            { if case .malformedArchive(_, let reason) = $0 { return reason.contains(text) }; return false }
        }
        assertFails(zipArchive([("a/data.pkl", PickleOps.stateDict([])), ("a/data.pkl", [])]), archiveError("twice"), "duplicate entry")
        assertFails(zipArchive([("a/x", [])]), archiveError("no <folder>/data.pkl"), "no data.pkl")
        assertFails(torchArchive(pickle: PickleOps.stateDict([]), storages: [:]).map { $0 }.replacingByteorder("big"),
                    archiveError("byteorder"), "big-endian")
        // The central directory's method is what counts.
        var badCentral = good
        if let start = firstCentralEntry(good) { badCentral[start + 10] = 8 }
        assertFails(badCentral, archiveError("compressed"), "deflated data.pkl")
        var badOffset = good
        if let start = firstCentralEntry(good) { badOffset.replaceSubrange((start + 42)..<(start + 46), with: [0xF0, 0xFF, 0xFF, 0x7F]) }
        assertFails(badOffset, archiveError("local header"), "local header offset past the end")
    }

    func testRandomByteFlipsNeverTrap() throws {
        let storage = littleEndianBytes((0..<6).map(Float.init))
        let good = torchArchive(pickle: PickleOps.stateDict([
            ("a", PickleOps.tensor(key: "0", elements: 6, offset: 0, shape: [2, 3], strides: [3, 1])),
            ("b", PickleOps.tensor(storage: "HalfStorage", key: "1", elements: 2, offset: 0, shape: [2], strides: [1])),
        ]), storages: ["0": storage, "1": [0, 0x3C, 0, 0xC0]])
        var generator = SystemRandomNumberGenerator()
        var opened = 0
        for _ in 0..<300 {
            var bytes = good
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            do {
                let file = try open(bytes)
                for name in file.tensors.keys { _ = try? file.floatTensor(name) }
                opened += 1
            } catch is EngineError {
            }
        }
        print("random byte flips: \(opened) of 300 still opened, the rest failed with an EngineError")
    }
}

/// Offset of the first central directory entry of an archive made by `zipArchive`.
private func firstCentralEntry(_ bytes: [UInt8]) -> Int? {
    let end = bytes.count - 22
    return Int(bytes[end + 16]) | Int(bytes[end + 17]) << 8 | Int(bytes[end + 18]) << 16 | Int(bytes[end + 19]) << 24
}

private extension Array where Element == UInt8 {
    func replacingByteorder(_ order: String) -> [UInt8] {
        let little = Array("little".utf8), replacement = Array(order.padding(toLength: 6, withPad: " ", startingAt: 0).utf8)
        guard let start = (0...(count - 6)).first(where: { Array(self[$0..<($0 + 6)]) == little }) else { return self }
        var copy = self
        copy.replaceSubrange(start..<(start + 6), with: replacement)
        return copy
    }
}
