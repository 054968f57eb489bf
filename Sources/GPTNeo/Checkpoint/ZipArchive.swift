import Foundation

// The central directory of a zip archive, enough to find `torch.save`'s entries in a memory-mapped file.
// torch writes every entry uncompressed ("stored") and pads the local headers so data starts aligned, so an
// entry's data is a byte range of the file that tensors can point into. Every field read from the file is
// bounds-checked before use: a truncated or hostile archive gives `malformedArchive`, never a trap.
// Layout (APPNOTE.TXT): local headers + data ..., central directory, [ZIP64 end record + locator], end record.

/// One entry: its name and where its (stored) bytes are in the file.
struct ZipEntry: Equatable {
    var name: String
    /// 0 = stored; anything else is compressed, which torch never writes.
    var method: UInt16
    /// Byte range of the entry's data in the file.
    var data: Range<Int>
}

struct ZipArchive {
    let path: String
    /// Entries by name, as listed in the central directory.
    let entries: [String: ZipEntry]

    /// The most entries accepted (a state dict of a large model has a few thousand storages).
    static let maximumEntries = 1 << 20

    init(base: UnsafeRawPointer, size: Int, path: String) throws {
        self.path = path
        let bytes = ByteReader(base: base, size: size, path: path)
        let directory = try Self.locateCentralDirectory(bytes)
        var entries: [String: ZipEntry] = [:]
        var cursor = directory.offset
        for _ in 0..<directory.count {
            let entry = try Self.readCentralEntry(bytes, at: &cursor, directoryEnd: directory.offset + directory.size)
            guard entries[entry.name] == nil else { throw bytes.malformed("entry \(entry.name) appears twice") }
            entries[entry.name] = entry
        }
        self.entries = entries
    }

    // MARK: End of central directory

    private static func locateCentralDirectory(_ bytes: ByteReader) throws -> (offset: Int, size: Int, count: Int) {
        // The end record (22 bytes + a comment of up to 65535) is searched backwards from the end.
        guard bytes.size >= 22 else { throw bytes.malformed("\(bytes.size) bytes is too short for a zip archive (truncated?)") }
        var end = -1
        var candidate = bytes.size - 22
        while candidate >= max(0, bytes.size - 22 - 65535) {
            if try bytes.u32(candidate) == 0x0605_4B50 { end = candidate; break }
            candidate -= 1
        }
        guard end >= 0 else { throw bytes.malformed("no end-of-central-directory record (truncated download?)") }
        var count = Int(try bytes.u16(end + 10))
        var size = Int(try bytes.u32(end + 12))
        var offset = Int(try bytes.u32(end + 16))
        guard try bytes.u16(end + 4) == 0, try bytes.u16(end + 6) == 0 || count == 0xFFFF else {
            throw bytes.malformed("multi-disk archives are not supported")
        }
        // ZIP64: torch writes it for archives past 4 GiB; the locator sits just before the end record.
        if count == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF, end >= 20, try bytes.u32(end - 20) == 0x0706_4B50 {
            let record = try bytes.int64(end - 20 + 8)
            guard try bytes.u32(record) == 0x0606_4B50 else { throw bytes.malformed("ZIP64 locator points to no ZIP64 end record") }
            count = try bytes.int64(record + 32)
            size = try bytes.int64(record + 40)
            offset = try bytes.int64(record + 48)
        }
        guard count <= maximumEntries else { throw bytes.malformed("\(count) entries exceed the limit of \(maximumEntries)") }
        guard offset <= end, size <= end - offset else {
            throw bytes.malformed("central directory (\(size) bytes at \(offset)) lies outside the file (truncated?)")
        }
        guard count <= size / 46 else { throw bytes.malformed("\(count) entries cannot fit a \(size)-byte central directory") }
        return (offset, size, count)
    }

    // MARK: Entries

    private static func readCentralEntry(_ bytes: ByteReader, at cursor: inout Int, directoryEnd: Int) throws -> ZipEntry {
        let start = cursor
        guard directoryEnd - start >= 46, try bytes.u32(start) == 0x0201_4B50 else {
            throw bytes.malformed("central directory entry at \(start) is cut short or has a bad signature")
        }
        let flags = try bytes.u16(start + 8)
        let method = try bytes.u16(start + 10)
        var compressedSize = Int(try bytes.u32(start + 20))
        let uncompressedSize32 = try bytes.u32(start + 24)
        let nameLength = Int(try bytes.u16(start + 28))
        let extraLength = Int(try bytes.u16(start + 30))
        let commentLength = Int(try bytes.u16(start + 32))
        var localOffset = Int(try bytes.u32(start + 42))
        let next = start + 46 + nameLength + extraLength + commentLength
        guard next <= directoryEnd else { throw bytes.malformed("central directory entry at \(start) overruns the directory") }
        guard let name = String(bytes: try bytes.slice(start + 46, nameLength), encoding: .utf8) else {
            throw bytes.malformed("entry name at \(start + 46) is not UTF-8")
        }
        guard flags & 1 == 0 else { throw bytes.malformed("entry \(name) is encrypted") }
        // ZIP64 extended information: the 64-bit values of the fields saturated at 0xFFFFFFFF, in order.
        var extra = start + 46 + nameLength
        let extraEnd = extra + extraLength
        while extraEnd - extra >= 4 {
            let id = try bytes.u16(extra), length = Int(try bytes.u16(extra + 2))
            guard length <= extraEnd - extra - 4 else { throw bytes.malformed("extra field of \(name) overruns its entry") }
            if id == 0x0001 {
                var field = extra + 4
                func take() throws -> Int {
                    guard field + 8 <= extra + 4 + length else { throw bytes.malformed("ZIP64 field of \(name) is too short") }
                    defer { field += 8 }
                    return try bytes.int64(field)
                }
                if uncompressedSize32 == 0xFFFF_FFFF { _ = try take() }
                if compressedSize == 0xFFFF_FFFF { compressedSize = try take() }
                if localOffset == 0xFFFF_FFFF { localOffset = try take() }
            }
            extra += 4 + length
        }
        cursor = next
        // The data follows the local header, whose name and extra (torch's alignment padding) may differ
        // in length from the central directory's.
        guard localOffset <= bytes.size - 30, try bytes.u32(localOffset) == 0x0403_4B50 else {
            throw bytes.malformed("local header of \(name) at \(localOffset) is outside the file or has a bad signature")
        }
        let dataStart = localOffset + 30 + Int(try bytes.u16(localOffset + 26)) + Int(try bytes.u16(localOffset + 28))
        guard dataStart <= bytes.size, compressedSize <= bytes.size - dataStart else {
            throw bytes.malformed("data of \(name) (\(compressedSize) bytes from \(dataStart)) reaches past the end of the file (truncated?)")
        }
        return ZipEntry(name: name, method: method, data: dataStart..<(dataStart + compressedSize))
    }
}

// MARK: - Checked little-endian reads

/// Little-endian reads from a mapped range that throw instead of reading past its end.
struct ByteReader {
    let base: UnsafeRawPointer
    let size: Int
    let path: String

    func malformed(_ reason: String) -> EngineError { .malformedArchive(path: path, reason: reason) }

    private func check(_ offset: Int, _ count: Int) throws {
        guard offset >= 0, count >= 0, offset <= size, count <= size - offset else {
            throw malformed("reading \(count) bytes at \(offset) passes the end of the file (\(size) bytes; truncated?)")
        }
    }
    func u16(_ offset: Int) throws -> UInt16 {
        try check(offset, 2); return UInt16(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }
    func u32(_ offset: Int) throws -> UInt32 {
        try check(offset, 4); return UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
    /// A 64-bit field that must fit an Int (file offsets and sizes).
    func int64(_ offset: Int) throws -> Int {
        try check(offset, 8)
        let value = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        guard let exact = Int(exactly: value) else { throw malformed("64-bit field at \(offset) is out of range") }
        return exact
    }
    func slice(_ offset: Int, _ count: Int) throws -> UnsafeRawBufferPointer {
        try check(offset, count); return UnsafeRawBufferPointer(start: base + offset, count: count)
    }
}
