import Foundation

// The engine's threads: one count for every parallel loop, by default the CPUs this process may
// actually use. `activeProcessorCount` reports the machine's online CPUs, which in a container limited
// to 2 CPUs on a 64-core node would start 64 workers fighting over 2 CPUs' worth of time.

// MARK: - Available CPUs

/// CPUs this process may use: its affinity mask (taskset, cpuset), capped by a cgroup CPU quota
/// (v2 `cpu.max`, v1 `cpu.cfs_quota_us`), rounded up; at least 1.
public func availableCPUCount() -> Int {
    var count = affinityCPUCount() ?? ProcessInfo.processInfo.activeProcessorCount
    if let quota = cgroupCPUQuota() { count = min(count, quota) }
    return max(1, count)
}

/// `availableCPUCount()` at first use.
@usableFromInline let processCPUCount = availableCPUCount()

/// CPUs in this process's affinity mask, from `Cpus_allowed_list` in /proc/self/status (the list
/// sched_getaffinity returns; Glibc's module does not export that call).
private func affinityCPUCount() -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }) else { return nil }
    return cpuCount(list: String(line.dropFirst("Cpus_allowed_list:".count)))
}

/// CPUs in a kernel CPU list such as "0-3,8,10-11"; nil when malformed or empty.
func cpuCount(list: String) -> Int? {
    var count = 0
    for range in list.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",") {
        let bounds = range.split(separator: "-").map { Int($0) }
        switch bounds.count {
        case 1: guard bounds[0] != nil else { return nil }; count += 1
        case 2: guard let low = bounds[0], let high = bounds[1], high >= low else { return nil }; count += high - low + 1
        default: return nil
        }
    }
    return count > 0 ? count : nil
}

/// The smallest CPU quota of this process's cgroup and its ancestors, nil without one.
private func cgroupCPUQuota() -> Int? {
    guard let membership = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return nil }
    var quotas: [Int] = []
    for line in membership.split(separator: "\n") {
        // "hierarchy-id:controllers:path"; v2 is "0::path", v1 lists its controllers.
        let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3 else { continue }
        let (controllers, path) = (fields[1].split(separator: ","), String(fields[2]))
        if fields[0] == "0" && controllers.isEmpty {
            quotas += ancestors(of: path).compactMap { directory in
                (try? String(contentsOfFile: "/sys/fs/cgroup\(directory)/cpu.max", encoding: .utf8)).flatMap(cpuQuota(cpuMax:))
            }
        } else if controllers.contains("cpu") {
            let mount = "/sys/fs/cgroup/" + controllers.joined(separator: ",")
            for root in [mount, "/sys/fs/cgroup/cpu"] {
                quotas += ancestors(of: path).compactMap { directory in
                    guard let quota = try? String(contentsOfFile: "\(root)\(directory)/cpu.cfs_quota_us", encoding: .utf8),
                          let period = try? String(contentsOfFile: "\(root)\(directory)/cpu.cfs_period_us", encoding: .utf8)
                    else { return nil }
                    return cpuQuota(quotaMicroseconds: quota, periodMicroseconds: period)
                }
            }
        }
    }
    return quotas.min()
}

/// "/a/b" → ["/a/b", "/a", ""]: a quota set on any ancestor limits this cgroup too.
private func ancestors(of path: String) -> [String] {
    var parts = path.split(separator: "/").map(String.init)
    var result: [String] = []
    while true {
        result.append(parts.isEmpty ? "" : "/" + parts.joined(separator: "/"))
        if parts.isEmpty { return result }
        parts.removeLast()
    }
}

/// CPUs allowed by a cgroup v2 `cpu.max` ("max 100000" or "QUOTA PERIOD"), rounded up; nil for no limit.
func cpuQuota(cpuMax: String) -> Int? {
    let fields = cpuMax.split(whereSeparator: \.isWhitespace)
    guard fields.count >= 1, fields[0] != "max" else { return nil }
    return cpuQuota(quotaMicroseconds: String(fields[0]), periodMicroseconds: fields.count > 1 ? String(fields[1]) : "100000")
}

/// CPUs allowed by a quota and period in microseconds, rounded up; nil when the quota is -1 or invalid.
func cpuQuota(quotaMicroseconds: String, periodMicroseconds: String) -> Int? {
    guard let quota = Int(quotaMicroseconds.trimmingCharacters(in: .whitespacesAndNewlines)),
          let period = Int(periodMicroseconds.trimmingCharacters(in: .whitespacesAndNewlines)),
          quota > 0, period > 0 else { return nil }
    return (quota + period - 1) / period
}

// MARK: - Parallel loops

/// Runs body(i) for i in 0..<iterations on `threads` threads (the caller and the shared pool's
/// workers for that count, WorkerPool.swift), returning when all are done. Each thread takes the next
/// undone iteration, so a thread slowed by other work on the machine takes fewer; which thread
/// computes an iteration never changes its result. Regions do not nest (checked).
/// Without `threads`: all available CPUs (for loading, before an engine exists).
@_spi(Benchmarks) public func parallelFor(_ iterations: Int, threads: Int = processCPUCount, _ body: (Int) -> Void) {
    if min(iterations, threads) <= 1 {
        WorkerPool.runOnCaller(iterations, body)
    } else {
        WorkerPool.shared(threads: threads).run(iterations, body)
    }
}

/// Runs `body` on ranges of `rows` (each row `elementsPerRow` floats of element-wise or per-row work) in
/// parallel on `threads`, two ranges per thread; on the caller alone when there is too little work to be
/// worth waking the threads (a decode step of a few sequences). Rows are computed independently, so any
/// split gives the same bits.
func forEachRowRange(rows: Int, elementsPerRow: Int, threads: Int, _ body: (Range<Int>) -> Void) {
    let parts = rows * elementsPerRow < (1 << 16) ? 1 : min(rows, threads * 2)
    parallelFor(parts, threads: threads) { part in
        body(rows * part / parts..<rows * (part + 1) / parts)
    }
}
