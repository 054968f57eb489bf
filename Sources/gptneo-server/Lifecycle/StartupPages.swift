import CMalloc
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Code and read-only data used only while starting

/// Drops the pages of the executable, the shared libraries and other read-only file mappings from the
/// process's resident set once the model is loaded, so that what stays resident is what serving uses.
///
/// Starting touches code and tables that serving never runs again: the dynamic linker's symbol lookups
/// in every library, ICU's initialisation, the settings and YAML parsers, the checkpoint reader. The
/// kernel maps file pages 64 KiB at a time around each fault, so these add up to about 10 MiB of the
/// 28 MiB of file pages resident after load, a fixed cost that is a third of an int8 125M model's
/// overhead. Such pages belong to the page cache: dropping them from this process's page tables keeps
/// them cached (other processes and a later fault get them without I/O) and the code serving runs faults
/// back in on its first use (a minor fault per 64 KiB window). Only private, non-writable mappings with
/// no anonymous page are dropped: a page the process ever wrote (relocations in RELRO, anything COW-copied)
/// is anonymous, and dropping it would lose the write.
///
/// The heap gets the same treatment: loading frees its temporaries (the tokenizer's decoded JSON, the
/// checkpoint's header) between allocations that live on, and glibc keeps those free pages resident
/// (about 4 MiB) until `malloc_trim` returns them.
enum StartupPages {
    /// Returns the heap's free pages and drops every releasable mapping listed in /proc/self/smaps.
    static func release() {
        #if os(Linux)
        _ = malloc_trim(0)
        guard let smaps = readProcessFile("/proc/self/smaps") else { return }
        for range in releasableRanges(smaps: smaps) {
            guard let address = UnsafeMutableRawPointer(bitPattern: range.lowerBound) else { continue }
            // Fails only for mappings the kernel cannot drop (locked, device memory): those stay.
            _ = madvise(address, Int(range.upperBound - range.lowerBound), MADV_DONTNEED)
        }
        #endif
    }

    /// The address ranges in an smaps listing that are file-backed, private, not writable and have no
    /// anonymous (written) page.
    static func releasableRanges(smaps: String) -> [Range<UInt>] {
        var ranges: [Range<UInt>] = []
        var candidate: Range<UInt>?
        // By bytes, and only the header and "Anonymous:" lines split into fields: a listing has some 25
        // field lines per mapping, and splitting every line as Characters took 4 ms.
        let anonymous = Array("Anonymous:".utf8)
        for line in smaps.utf8.split(separator: UInt8(ascii: "\n")) {
            guard let head = line.first else { continue }
            if line.starts(with: anonymous) {
                // Comes once per mapping, after its header.
                if let range = candidate {
                    let fields = line.split(separator: UInt8(ascii: " "))
                    if fields.count >= 2, fields[1].elementsEqual("0".utf8) { ranges.append(range) }
                    candidate = nil
                }
                continue
            }
            // Headers start with the mapping's address in lowercase hex, field names with a capital letter.
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(head) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(head)
            else { continue }
            // "start-end perms offset device inode [path]".
            candidate = nil
            let fields = Substring(line).split(separator: " ", omittingEmptySubsequences: true)
            let bounds = fields[0].split(separator: "-")
            guard fields.count >= 6, bounds.count == 2, let start = UInt(bounds[0], radix: 16),
                  let end = UInt(bounds[1], radix: 16), start < end else { continue }
            let permissions = Array(fields[1].utf8)
            // Pseudo-mappings ([vdso], [stack], [anon:...]) have no path starting with a slash.
            guard permissions.count == 4, permissions[0] == UInt8(ascii: "r"), permissions[1] == UInt8(ascii: "-"),
                  permissions[3] == UInt8(ascii: "p"), fields[5].hasPrefix("/") else { continue }
            candidate = start..<end
        }
        return ranges
    }

    /// The whole contents of a /proc file (whose reported size is 0, so it is read until end of file).
    private static func readProcessFile(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            contents += chunk[..<count]
        }
        return String(decoding: contents, as: UTF8.self)
    }
}
