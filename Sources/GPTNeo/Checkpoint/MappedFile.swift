import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - A memory-mapped file

/// A whole file mapped read-only; unmapped when the last reference goes away.
final class MappedFile: @unchecked Sendable {
    let path: String
    let base: UnsafeRawPointer
    let size: Int

    init(path: String) throws {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else { throw EngineError.fileMissing(path: path) }
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw EngineError.unreadableFile(path: path, reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw EngineError.unreadableFile(path: path, reason: String(cString: strerror(errno)))
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw EngineError.unreadableFile(path: path, reason: "not a regular file") }
        size = Int(status.st_size)
        // mmap refuses empty files; such a file is simply truncated (checked by the parser).
        guard size > 0 else { base = UnsafeRawPointer(bitPattern: 1)!; return }
        let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw EngineError.unreadableFile(path: path, reason: "mmap: " + String(cString: strerror(errno)))
        }
        base = UnsafeRawPointer(mapped)
    }

    deinit { if size > 0 { munmap(UnsafeMutableRawPointer(mutating: base), size) } }

    /// Drops the whole pages inside `bytes` (offsets in the file) from this process's resident set. The
    /// mapping is private and never written, so its pages are the page cache's: they stay cached (a later
    /// read costs no I/O) and come back on the next access. Pages shared with neighbouring bytes stay.
    func releasePages(_ bytes: Range<Int>) {
        #if os(Linux)
        precondition(bytes.lowerBound >= 0 && bytes.upperBound <= size, "bytes \(bytes) outside a \(size)-byte file")
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: base) + bytes.lowerBound, end = Int(bitPattern: base) + bytes.upperBound
        let first = (start + page - 1) / page * page, last = end / page * page
        guard last > first, let address = UnsafeMutableRawPointer(bitPattern: first) else { return }
        _ = madvise(address, last - first, Int32(MADV_DONTNEED))
        #endif
    }
}

// MARK: - Float tensors

/// An immutable row-major Float tensor, either borrowed from a mapped file (kept alive by `owner`)
/// or owning a converted copy.
public final class FloatTensor: @unchecked Sendable {
    public let shape: [Int]
    /// The elements; valid as long as this object lives.
    public let buffer: UnsafeBufferPointer<Float>
    private let owner: AnyObject?
    private let ownsBuffer: Bool

    init(shape: [Int], borrowing buffer: UnsafeBufferPointer<Float>, owner: AnyObject) {
        self.shape = shape; self.buffer = buffer; self.owner = owner; ownsBuffer = false
    }

    /// Allocates `shape`'s element count and lets `fill` write every element.
    public init(shape: [Int], fill: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        let count = shape.reduce(1, *)
        let storage = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(count, 1))
        storage.initialize(repeating: 0)
        try fill(UnsafeMutableBufferPointer(rebasing: storage[0..<count]))
        self.shape = shape; buffer = UnsafeBufferPointer(rebasing: storage[0..<count]); owner = nil; ownsBuffer = true
    }

    /// A copy of `values` (row-major) with `shape`.
    public convenience init(shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "values do not match the shape")
        self.init(shape: shape) { out in _ = out.initialize(from: values) }
    }

    deinit { if ownsBuffer { UnsafeMutableRawPointer(mutating: buffer.baseAddress!).deallocate() } }

    public var pointer: UnsafePointer<Float> { buffer.baseAddress! }
    public var count: Int { buffer.count }
    /// The elements as an array (a copy).
    public var array: [Float] { Array(buffer) }
}
