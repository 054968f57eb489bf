import Foundation
import XCTest
@testable import GPTNeo

/// The default thread count: affinity list and cgroup quota parsing.
final class ThreadsTests: XCTestCase {
    func testCPUListsAreCounted() {
        XCTAssertEqual(cpuCount(list: "0-1"), 2)
        XCTAssertEqual(cpuCount(list: " 0-3,8,10-11\n"), 7)
        XCTAssertEqual(cpuCount(list: "5"), 1)
        XCTAssertNil(cpuCount(list: ""))
        XCTAssertNil(cpuCount(list: "3-1"))
        XCTAssertNil(cpuCount(list: "a-b"))
    }

    func testCgroupQuotasRoundUp() {
        XCTAssertNil(cpuQuota(cpuMax: "max 100000\n"))
        XCTAssertEqual(cpuQuota(cpuMax: "200000 100000\n"), 2)
        XCTAssertEqual(cpuQuota(cpuMax: "150000 100000"), 2, "1.5 CPUs of time: two threads, not one")
        XCTAssertEqual(cpuQuota(cpuMax: "50000 100000"), 1)
        XCTAssertNil(cpuQuota(quotaMicroseconds: "-1\n", periodMicroseconds: "100000\n"), "cgroup v1: no quota")
        XCTAssertEqual(cpuQuota(quotaMicroseconds: "400000\n", periodMicroseconds: "100000\n"), 4)
    }

    func testAvailableCPUsAreAtMostTheOnlineCPUs() {
        let available = availableCPUCount()
        XCTAssertGreaterThanOrEqual(available, 1)
        XCTAssertLessThanOrEqual(available, ProcessInfo.processInfo.processorCount)
    }
}
