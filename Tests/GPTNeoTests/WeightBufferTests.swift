import Foundation
import XCTest
@testable import GPTNeo

/// Weight memory in its own 2 MiB-aligned mappings (WeightBuffer.swift), with and without the huge-page
/// advice: usable to its last byte, zeroed, and holding the same panels, products included, either way;
/// small buffers from the allocator.
final class WeightBufferTests: XCTestCase {
    func testLargeBufferIsAlignedZeroedAndWritableToItsLastByte() {
        for hugePages in [false, true] {
            for (byteCount, threads) in [(2 << 20, 1), ((5 << 20) + 3, 2), ((9 << 20) + 4096, 3)] {
                let buffer = WeightBuffer(byteCount: byteCount, threads: threads, hugePages: hugePages)
                defer { buffer.deallocate() }
                let bytes = buffer.start.bindMemory(to: UInt8.self, capacity: byteCount)
                #if os(Linux)
                XCTAssertEqual(Int(bitPattern: buffer.start) % WeightBuffer.hugePageBytes, 0, "\(byteCount) bytes")
                XCTAssertTrue((0..<byteCount).allSatisfy { bytes[$0] == 0 }, "a fresh mapping reads as zeros")
                #endif
                for i in stride(from: 0, to: byteCount, by: 4093) { bytes[i] = UInt8(truncatingIfNeeded: i) }
                bytes[byteCount - 1] = 0xA5
                for i in stride(from: 0, to: byteCount - 1, by: 4093) { XCTAssertEqual(bytes[i], UInt8(truncatingIfNeeded: i)) }
                XCTAssertEqual(bytes[byteCount - 1], 0xA5)
            }
        }
    }

    func testSmallBufferComesFromTheAllocatorAt64Bytes() {
        for (byteCount, hugePages) in [(1, true), (100_000, false), ((2 << 20) - 1, true)] {
            let buffer = WeightBuffer(byteCount: byteCount, threads: 2, hugePages: hugePages)
            XCTAssertEqual(Int(bitPattern: buffer.start) % 64, 0)
            buffer.start.storeBytes(of: 7, toByteOffset: byteCount - 1, as: UInt8.self)
            buffer.deallocate()
        }
    }

    /// A matrix of at least 2 MiB in every format, in memory advised for huge pages and in ordinary
    /// memory: the same stored rows and the same products, bit for bit.
    func testMatricesInEitherMemoryHoldTheSameNumbers() {
        let (N, K) = (1040, 2056)
        let tensor = FloatTensor(shape: [N, K], values: randomMatrix(N * K, seed: 33))
        for format in WeightFormat.allCases {
            let huge = WeightMatrix(tensor, format: format, threads: 2, hugePages: true)
            let small = WeightMatrix(tensor, format: format, threads: 2, hugePages: false)
            XCTAssertGreaterThanOrEqual(huge.byteSize, WeightBuffer.mappedMinimumBytes, "\(format) must take the mapped path")
            var a = [Float](repeating: .nan, count: K), b = [Float](repeating: .nan, count: K)
            for n in [0, 1, 15, 16, 517, N - 1] {
                XCTAssertEqual(huge.storedRow(n, into: &a), small.storedRow(n, into: &b))
                assertBitwiseEqual(a, b, "\(format) row \(n)")
            }
            for M in [1, 7, 17] {
                let x = randomMatrix(M * K, seed: UInt64(M))
                assertBitwiseEqual(product(x, huge, nil, M: M, threads: 2), product(x, small, nil, M: M, threads: 2), "\(format) M \(M)")
            }
        }
    }
}
