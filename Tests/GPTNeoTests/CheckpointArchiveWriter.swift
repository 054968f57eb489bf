import Foundation

// MARK: - Writing PyTorch archives and pickles for tests

/// A zip archive of stored (uncompressed) entries, laid out as `torch.save` writes it (without its
/// alignment padding, which the reader must not need). CRCs are left zero: the reader does not check them.
/// `zip64` writes what an archive past 4 GiB has: sizes and offsets saturated in the central directory with
/// the real values in a ZIP64 extra field, and a ZIP64 end record + locator before the end record.
func zipArchive(_ entries: [(name: String, bytes: [UInt8])], zip64: Bool = false) -> [UInt8] {
    func u16(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt16(v).littleEndian, Array.init) }
    func u32(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt32(v).littleEndian, Array.init) }
    func u64(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt64(v).littleEndian, Array.init) }
    var out: [UInt8] = [], central: [UInt8] = []
    for entry in entries {
        let name = Array(entry.name.utf8)
        let offset = out.count
        let sizes = u32(0) + u32(entry.bytes.count) + u32(entry.bytes.count)  // crc, compressed, uncompressed
        out += u32(0x0403_4B50) + u16(20) + u16(0) + u16(0) + u16(0) + u16(0) + sizes + u16(name.count) + u16(0) + name + entry.bytes
        if zip64 {
            let extra = u16(0x0001) + u16(24) + u64(entry.bytes.count) + u64(entry.bytes.count) + u64(offset)
            central += u32(0x0201_4B50) + u16(45) + u16(45) + u16(0) + u16(0) + u16(0) + u16(0) + u32(0)
                + u32(0xFFFF_FFFF) + u32(0xFFFF_FFFF) + u16(name.count) + u16(extra.count) + u16(0) + u16(0) + u16(0) + u32(0)
                + u32(0xFFFF_FFFF) + name + extra
        } else {
            central += u32(0x0201_4B50) + u16(20) + u16(20) + u16(0) + u16(0) + u16(0) + u16(0) + sizes
                + u16(name.count) + u16(0) + u16(0) + u16(0) + u16(0) + u32(0) + u32(offset) + name
        }
    }
    let directoryOffset = out.count
    out += central
    if zip64 {
        let recordOffset = out.count
        out += u32(0x0606_4B50) + u64(44) + u16(45) + u16(45) + u32(0) + u32(0) + u64(entries.count) + u64(entries.count)
            + u64(central.count) + u64(directoryOffset)
        out += u32(0x0706_4B50) + u32(0) + u64(recordOffset) + u32(1)
        out += u32(0x0605_4B50) + u16(0) + u16(0) + u16(0xFFFF) + u16(0xFFFF) + u32(0xFFFF_FFFF) + u32(0xFFFF_FFFF) + u16(0)
    } else {
        out += u32(0x0605_4B50) + u16(0) + u16(0) + u16(entries.count) + u16(entries.count) + u32(central.count) + u32(directoryOffset) + u16(0)
    }
    return out
}

/// A `torch.save` archive: `archive/data.pkl`, `archive/byteorder` and one `archive/data/<key>` per storage.
func torchArchive(pickle: [UInt8], storages: [String: [UInt8]], folder: String = "archive", zip64: Bool = false) -> [UInt8] {
    var entries: [(name: String, bytes: [UInt8])] = [(folder + "/data.pkl", pickle), (folder + "/byteorder", Array("little".utf8))]
    for (key, bytes) in storages.sorted(by: { $0.key < $1.key }) { entries.append((folder + "/data/" + key, bytes)) }
    entries.append((folder + "/version", Array("3\n".utf8)))
    return zipArchive(entries, zip64: zip64)
}

/// Pickle opcodes assembled by hand (CPython's Lib/pickletools.py names them).
enum PickleOps {
    static func string(_ s: String) -> [UInt8] {  // BINUNICODE
        let bytes = Array(s.utf8)
        return [0x58] + withUnsafeBytes(of: UInt32(bytes.count).littleEndian, Array.init) + bytes
    }
    static func int(_ n: Int) -> [UInt8] {  // BININT, or LONG1 of 8 bytes past 32 bits
        if let small = Int32(exactly: n) { return [0x4A] + withUnsafeBytes(of: small.littleEndian, Array.init) }
        return [0x8A, 8] + withUnsafeBytes(of: Int64(n).littleEndian, Array.init)
    }
    static func global(_ module: String, _ name: String) -> [UInt8] { [0x63] + Array("\(module)\n\(name)\n".utf8) }
    static func tuple(_ items: [[UInt8]]) -> [UInt8] { [0x28] + items.flatMap { $0 } + [0x74] }
    static let emptyDict: [UInt8] = [0x7D], mark: [UInt8] = [0x28], setItems: [UInt8] = [0x75], stop: [UInt8] = [0x2E]
    static let reduce: [UInt8] = [0x52], persistentID: [UInt8] = [0x51], newFalse: [UInt8] = [0x89], emptyTuple: [UInt8] = [0x29]

    /// One `_rebuild_tensor_v2` call on storage `key` as torch.save writes it (protocol 2).
    static func tensor(storage: String = "FloatStorage", key: String, elements: Int, offset: Int, shape: [Int], strides: [Int]) -> [UInt8] {
        global("torch._utils", "_rebuild_tensor_v2")
            + tuple([
                tuple([string("storage"), global("torch", storage), string(key), string("cpu"), int(elements)]) + persistentID,
                int(offset), tuple(shape.map(int)), tuple(strides.map(int)), newFalse,
                global("collections", "OrderedDict") + emptyTuple + reduce,
            ]) + reduce
    }

    /// `{name: tensor, ...}` as protocol 2.
    static func stateDict(_ entries: [(String, [UInt8])]) -> [UInt8] {
        [0x80, 0x02] + emptyDict + mark + entries.flatMap { string($0.0) + $0.1 } + setItems + stop
    }
}

/// Float32 values as little-endian bytes.
func littleEndianBytes(_ values: [Float]) -> [UInt8] { values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }
