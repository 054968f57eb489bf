import Foundation
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Memory for weight matrices

/// A long-lived buffer for a weight matrix. One of at least 2 MiB gets its own anonymous mapping,
/// aligned to 2 MiB, whose pages are faulted in up front; smaller ones come from the allocator.
///
/// Why a mapping of its own: the repack writes every byte once, and faulting the pages in with one
/// `MADV_POPULATE_WRITE` per thread costs a fraction of one fault per 4 KiB page as the writes reach them
/// (500 MB: 0.18-0.34 s against 0.27-0.42 s on this project's reference machine, Linux 5.14+; older
/// kernels refuse the advice and the writes fault page by page). And it can be marked for transparent huge
/// pages, on request (`hugePages`, the server's `model.huge_pages`): a decode step streams every weight
/// once, 494 MB for 125M in float32, which in 4 KiB pages is 120 000 translations against a second-level
/// TLB of a few thousand entries, and 1-10 % of a step in the engine alone. Not by default, because
/// where the kernel has to find or compact 2 MiB pages their first commit can cost far more than it saves:
/// on the reference machine 500 MB of huge pages took 1.0-1.6 s to populate against 0.2 s for small ones
/// (a server start 1.33-1.82 s against 0.63-0.84 s), while served throughput showed no difference outside
/// its spread. Either way the memory holds the same numbers; only address translation differs.
struct WeightBuffer: @unchecked Sendable {
    let start: UnsafeMutableRawPointer
    /// Bytes mapped (a multiple of the page size), or 0 for a buffer from the allocator.
    private let mappedBytes: Int

    static let mappedMinimumBytes = 2 << 20
    static let hugePageBytes = 2 << 20

    /// `byteCount` bytes aligned to at least 64 bytes; zero-filled when mapped, uninitialised otherwise.
    /// A mapping's pages are faulted in up front, split over `threads`; with `hugePages`, it is advised
    /// `MADV_HUGEPAGE` first (only whole 2 MiB ranges can be huge; the tail stays in small pages).
    init(byteCount: Int, threads: Int = 1, hugePages: Bool = false) {
        #if os(Linux)
        if byteCount >= WeightBuffer.mappedMinimumBytes, let mapped = WeightBuffer.mapAligned(byteCount, hugePages: hugePages) {
            (start, mappedBytes) = mapped
            WeightBuffer.populate(start, bytes: mappedBytes, threads: threads)
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
    private static func mapAligned(_ byteCount: Int, hugePages: Bool) -> (UnsafeMutableRawPointer, Int)? {
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
        // Advice only: refused (no transparent huge pages in this kernel, or `never`) it leaves small pages.
        if hugePages { _ = madvise(start, bytes, Int32(MADV_HUGEPAGE)) }
        return (start, bytes)
    }

    /// Faults every page of the mapping in, since the repack writes them all next: one kernel entry per
    /// part instead of one per page. Parts of whole 2 MiB ranges, one per thread: where the platform's
    /// first commit of memory is slow (under gVisor after the machine has idled, 500 MB of huge pages took
    /// 1.2 s on one thread, 0.9 s on two), the threads' faults overlap.
    private static func populate(_ start: UnsafeMutableRawPointer, bytes: Int, threads: Int) {
        let ranges = (bytes + hugePageBytes - 1) / hugePageBytes
        let parts = max(1, min(threads, ranges))
        parallelFor(parts, threads: threads) { part in
            let from = ranges * part / parts * hugePageBytes
            let to = min(bytes, ranges * (part + 1) / parts * hugePageBytes)
            _ = madvise(start + from, to - from, Int32(MADV_POPULATE_WRITE))
        }
    }
    #endif
}
