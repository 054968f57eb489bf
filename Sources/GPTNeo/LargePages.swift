import Foundation
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Memory for weights, in 2 MiB pages where the kernel has them

/// A long-lived buffer of at least 2 MiB (a weight matrix) in its own anonymous mapping, aligned to
/// 2 MiB and marked for transparent huge pages; smaller buffers come from the allocator as before.
///
/// Why: a decode step streams every weight once, 494 MB for 125M in float32. In 4 KiB pages that is
/// 120 000 translations per step against a second-level TLB of a few thousand entries, so nearly every
/// page costs a table walk; and loading faults each of those pages in, one kernel entry per 4 KiB
/// (about a third of a cold start's repacking time). Debian's default (`enabled` = madvise) gives huge
/// pages only to mappings that ask, which is what this does. Where the kernel has none free, or has
/// transparent huge pages off, the mapping is simply backed by 4 KiB pages: the same memory, the same
/// numbers, only the translations differ.
///
/// Only whole 2 MiB ranges inside the mapping can be huge; the tail past the last one stays in small
/// pages, so the resident size is the buffer's, rounded up to 4 KiB.
struct LargePageBuffer: @unchecked Sendable {
    let start: UnsafeMutableRawPointer
    /// Bytes mapped (a multiple of the page size), or 0 for a buffer from the allocator.
    private let mappedBytes: Int

    static let hugePageBytes = 2 << 20

    /// `byteCount` bytes aligned to at least 64 bytes; zero-filled when mapped, uninitialised otherwise.
    /// A mapping's pages are faulted in up front, split over `threads`.
    init(byteCount: Int, threads: Int = 1) {
        #if os(Linux)
        if byteCount >= LargePageBuffer.hugePageBytes, HugePages.enabled,
           let mapped = LargePageBuffer.mapAligned(byteCount) {
            (start, mappedBytes) = mapped
            LargePageBuffer.populate(start, bytes: mappedBytes, threads: threads)
            return
        }
        #endif
        start = UnsafeMutableRawPointer.allocate(byteCount: max(64, byteCount), alignment: 64)
        mappedBytes = 0
    }

    func deallocate() {
        #if os(Linux)
        if mappedBytes > 0 { munmap(start, mappedBytes); return }
        #endif
        start.deallocate()
    }

    #if os(Linux)
    /// Maps `byteCount` bytes (rounded up to pages) at a 2 MiB boundary: over-maps by 2 MiB, then returns
    /// the slack on both sides, so only the aligned range stays mapped.
    private static func mapAligned(_ byteCount: Int) -> (UnsafeMutableRawPointer, Int)? {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let bytes = (byteCount + page - 1) / page * page
        let reserved = bytes + hugePageBytes
        guard let raw = mmap(nil, reserved, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), raw != MAP_FAILED
        else { return nil }
        let base = Int(bitPattern: raw)
        let aligned = (base + hugePageBytes - 1) / hugePageBytes * hugePageBytes
        if aligned > base { munmap(raw, aligned - base) }
        let end = aligned + bytes, reservedEnd = base + reserved
        if reservedEnd > end { munmap(UnsafeMutableRawPointer(bitPattern: end)!, reservedEnd - end) }
        let start = UnsafeMutableRawPointer(bitPattern: aligned)!
        // Advice only: refused (no transparent huge pages in this kernel) it leaves ordinary pages.
        _ = madvise(start, bytes, Int32(MADV_HUGEPAGE))
        return (start, bytes)
    }

    /// Faults every page of the mapping in, since the repacking writes them all next: one kernel entry
    /// per part instead of one per page (Linux 5.14+; older kernels refuse the advice and the writes fault
    /// page by page). Parts of whole 2 MiB pages, one per thread: where the platform's first commit of
    /// memory is slow (under gVisor after the machine has idled, 500 MB took 1.2 s on one thread, 0.9 s on
    /// two), the threads' faults overlap.
    private static func populate(_ start: UnsafeMutableRawPointer, bytes: Int, threads: Int) {
        let hugePages = (bytes + hugePageBytes - 1) / hugePageBytes
        let parts = max(1, min(threads, hugePages))
        parallelFor(parts, threads: threads) { part in
            let from = hugePages * part / parts * hugePageBytes
            let to = min(bytes, hugePages * (part + 1) / parts * hugePageBytes)
            _ = madvise(start + from, to - from, Int32(MADV_POPULATE_WRITE))
        }
    }
    #endif
}

/// Whether large buffers get their own huge-page mappings: on, except where a benchmark compares both ways.
@_spi(Benchmarks) public enum HugePages {
    public nonisolated(unsafe) static var enabled = true
}
