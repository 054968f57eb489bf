import Foundation
import XCTest
@testable import gptneo_server

/// Which mappings the process drops from its resident set after loading, and that dropping them is safe.
final class StartupPagesTests: XCTestCase {
    /// One of each kind of mapping, as /proc/self/smaps lists them (fields trimmed to the ones read).
    private let smaps = """
        55d0c0000000-55d0c0200000 r--p 00000000 fe:01 100 /srv/bin/gptneo-server
        Size:               2048 kB
        Rss:                 512 kB
        Anonymous:             0 kB
        55d0c0200000-55d0c0900000 r-xp 00200000 fe:01 100 /srv/bin/gptneo-server
        Rss:                4096 kB
        Anonymous:             0 kB
        55d0c0900000-55d0c0940000 r--p 00900000 fe:01 100 /srv/bin/gptneo-server
        Rss:                 256 kB
        Anonymous:           156 kB
        55d0c0940000-55d0c0990000 rw-p 00940000 fe:01 100 /srv/bin/gptneo-server
        Anonymous:            96 kB
        7f0000000000-7f0010000000 rw-p 00000000 00:00 0
        Anonymous:        262144 kB
        7f0020000000-7f0030000000 r--p 00000000 fe:01 200 /models/gpt-neo/model.safetensors
        Anonymous:             0 kB
        7f0040000000-7f0040010000 r--s 00000000 00:01 300 /dev/shm/segment
        Anonymous:             0 kB
        7f0050000000-7f0050100000 r-xp 00000000 fe:01 400 /usr/lib/libold.so (deleted)
        Anonymous:             0 kB
        7ffc00000000-7ffc00002000 r-xp 00000000 00:00 0                          [vdso]
        Anonymous:             0 kB
        """

    func testDropsOnlyPrivateReadOnlyFileMappingsThatWereNeverWritten() {
        let ranges = StartupPages.releasableRanges(smaps: smaps)
        XCTAssertEqual(ranges, [
            0x55d0c0000000..<0x55d0c0200000,  // read-only data
            0x55d0c0200000..<0x55d0c0900000,  // code
            0x7f0020000000..<0x7f0030000000,  // the checkpoint
            0x7f0050000000..<0x7f0050100000,  // a replaced library still maps its old inode
        ])
        // Not the relocated (RELRO) segment, not writable data or the heap, not shared memory, not [vdso].
    }

    func testAMappingWithoutAnAnonymousLineIsKept() {
        XCTAssertEqual(StartupPages.releasableRanges(smaps: "7f0020000000-7f0030000000 r--p 00000000 fe:01 200 /a/file\nRss: 4 kB\n"), [])
    }

    #if os(Linux)
    /// On this very process: the file pages resident drop, and the code dropped still runs (it faults back
    /// in from the page cache), as does data the dynamic linker relocated.
    func testReleasingThisProcessLowersItsFilePagesAndEverythingStillRuns() throws {
        func residentFileKiB() throws -> Int {
            let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
            let line = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("RssFile:") })
            return try XCTUnwrap(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
        }
        let before = try residentFileKiB()
        StartupPages.release()
        let after = try residentFileKiB()
        XCTAssertLessThan(after, before / 2, "RssFile \(before) kB before, \(after) kB after")
        let formatted = String(describing: Date(timeIntervalSince1970: 0)) + "\(1.5)"
        XCTAssertEqual(formatted, "1970-01-01 00:00:00 +00001.5")
        XCTAssertEqual(try JSONDecoder().decode([String: Int].self, from: Data(#"{"a":1}"#.utf8)), ["a": 1])
    }
    #endif
}
