import Foundation
import GPTNeo

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - libFuzzer entry point
// Built with `swift build --sanitize fuzzer --sanitize address --product CheckpointFuzzer`, libFuzzer
// supplies `main` and calls this for every input. The first byte picks what the rest is:
// - even: a whole `torch.save` archive (zip reader, then the unpickler on its data.pkl);
// - odd: a bare pickle, unpickled against fixed storages `0`...`3` of 1 to 64 bytes, so mutations reach
//   deep into the unpickler without having to keep a zip archive intact.
// Besides "no crash, no memory error, no trap", every tensor the loader accepts must lie inside its
// storage and have no more elements than the stored bytes (reading it as F32 allocates that many): the
// harness reads every element through the tensor's own strides, which AddressSanitizer checks against the
// exact input buffer.

/// The fixed storages of pickle mode: key → byte range in `storageBytes`.
private let storageRanges: [String: Range<Int>] = ["0": 0..<64, "1": 0..<16, "2": 8..<12, "3": 63..<64]
nonisolated(unsafe) private let storageBytes: UnsafeMutableRawBufferPointer = {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 16)
    for i in 0..<64 { buffer[i] = UInt8(i) }
    return buffer
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    check(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// Whether the loader accepted the input (for the replay summary).
@discardableResult
func check(_ input: UnsafeRawBufferPointer) -> Bool {
    guard let mode = input.first else { return false }
    let rest = UnsafeRawBufferPointer(rebasing: input[1...])
    // A copy of exactly the input's size, so that ASan flags a read one byte past its end.
    let exact = UnsafeMutableRawBufferPointer.allocate(byteCount: max(rest.count, 1), alignment: 1)
    defer { exact.deallocate() }
    exact.copyMemory(from: rest)
    let bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(exact)[0..<rest.count])
    do {
        if mode % 2 == 0 {
            touchEveryElement(try PyTorchFile.parse(bytes, path: "fuzz.bin"), in: bytes)
        } else {
            let tensors = try PyTorchFile.tensors(pickle: bytes, path: "fuzz.pkl") { key in storageRanges[key].map { ("data/" + key, $0) } }
            touchEveryElement(tensors, in: UnsafeRawBufferPointer(storageBytes))
        }
        return true
    } catch let error as EngineError {
        // Refusing the input is fine; only a trap, a memory error or an invariant breach is a finding.
        if getenv("FUZZ_VERBOSE") != nil { printError("refused: \(error)\n") }
        return false
    } catch {
        fail("an error that is not an EngineError: \(error)")
    }
}

/// Reads every element of every accepted tensor (bounded) and checks it lies inside `bytes`.
private func touchEveryElement(_ tensors: [String: StoredTensor], in bytes: UnsafeRawBufferPointer) {
    var checksum: UInt8 = 0
    for tensor in tensors.values {
        if tensor.shape.count != tensor.strides.count { fail("\(tensor.name): rank of shape and strides differ") }
        // Reading as F32 allocates elementCount floats: never more elements than the bytes stored.
        if tensor.elementCount > bytes.count / tensor.dtype.byteSize { fail("\(tensor.name): \(tensor.elementCount) elements from \(bytes.count) bytes") }
        guard tensor.elementCount > 0 else { continue }
        var index = [Int](repeating: 0, count: tensor.shape.count)
        for _ in 0..<min(tensor.elementCount, 1 << 16) {
            var element = 0
            for axis in index.indices { element += index[axis] * tensor.strides[axis] }
            let begin = tensor.byteOffset + element * tensor.dtype.byteSize
            if begin < 0 || begin + tensor.dtype.byteSize > bytes.count {
                fail("\(tensor.name): element \(index) at bytes \(begin)..<\(begin + tensor.dtype.byteSize) outside \(bytes.count)")
            }
            for b in 0..<tensor.dtype.byteSize { checksum &+= bytes[begin + b] }
            var axis = index.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < tensor.shape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
    }
    blackHole(checksum)
}

@inline(never) private func blackHole(_ value: UInt8) { if value == 0xFF, getenv("NEVER_SET_X") != nil { print(value) } }

private func fail(_ message: String) -> Never {
    printError(message + "\n")
    abort()
}

// MARK: - Replay entry point
// A normal build (no fuzzer runtime) links this as `main`: it replays the files given as arguments
// (a crash input, the seed corpus) through the same checks.

@_cdecl("CheckpointFuzzer_main")
public func replayMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    let paths = (1..<Int(argc)).map { String(cString: argv[$0]!) }
    var accepted = 0
    for path in paths {
        guard let contents = FileManager.default.contents(atPath: path) else {
            printError("cannot read \(path)\n")
            return 1
        }
        if contents.withUnsafeBytes({ check($0) }) { accepted += 1 }
    }
    print("replayed \(paths.count) inputs (\(accepted) accepted): no trap, every accepted tensor inside its storage")
    return 0
}

private func printError(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
