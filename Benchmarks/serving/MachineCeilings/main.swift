import COpenBLAS
import Foundation

// The machine's ceilings for the serving benchmark (scripts/bench.sh), one JSON object per line:
//   MachineCeilings stream [MEGABYTES=500] [THREADS=2] [SECONDS=3]
//       reads an fp32 buffer of that size over and over with THREADS threads, each pinned to one
//       allowed CPU and reading its own contiguous slice, as a decode step streams the weights.
//   MachineCeilings sgemm M K N [THREADS=2] [SECONDS=2]
//       OpenBLAS cblas_sgemm with its own THREADS threads, y (M, N) = x (M, K) · wᵀ with w (N, K)
//       row-major: the layout of a linear layer's weight, so the shape is that of a real layer. Also
//       reports the core type whose kernels OpenBLAS loaded ("Haswell", "SkylakeX", …): its own CPU
//       detection, or OPENBLAS_CORETYPE when that is set (read once, when the library loads).
//   MachineCeilings touch [MEGABYTES=500] [THREADS=2]
//       maps that much fresh anonymous memory and writes one byte per 4 KiB page, THREADS threads on
//       their own slices, once: what loading pays before writing any weight into memory it allocates
//       (page faults, the kernel zeroing each page, and under a hypervisor the host backing it).
// stream and sgemm report the best and the median of the repetitions: a shared machine only ever slows a
// run down.

// MARK: - Timing

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

func emit(_ fields: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

// MARK: - Thread pinning

/// glibc's sched_getaffinity/sched_setaffinity are GNU extensions the Glibc module does not import;
/// they are looked up at run time instead. pid 0 means the calling thread.
typealias AffinityCall = @convention(c) (Int32, Int, UnsafeMutableRawPointer) -> Int32
let affinityMaskBytes = 128  // 1024 CPUs, as glibc's cpu_set_t

func affinityCall(_ name: String) -> AffinityCall? {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }  // RTLD_DEFAULT
    return unsafeBitCast(symbol, to: AffinityCall.self)
}

/// The CPUs this process may run on (affinity mask; a cgroup quota is not visible here).
func allowedCPUs() -> [Int] {
    var mask = [UInt8](repeating: 0, count: affinityMaskBytes)
    guard let get = affinityCall("sched_getaffinity"),
          mask.withUnsafeMutableBytes({ get(0, affinityMaskBytes, $0.baseAddress!) }) == 0 else { return [] }
    return (0..<(affinityMaskBytes * 8)).filter { mask[$0 / 8] & (1 << ($0 % 8)) != 0 }
}

/// Pins the calling thread to one CPU; false when the call is unavailable or refused.
func pinCurrentThread(to cpu: Int) -> Bool {
    var mask = [UInt8](repeating: 0, count: affinityMaskBytes)
    mask[cpu / 8] |= UInt8(1 << (cpu % 8))
    guard let set = affinityCall("sched_setaffinity") else { return false }
    return mask.withUnsafeMutableBytes { set(0, affinityMaskBytes, $0.baseAddress!) } == 0
}

// MARK: - Weight streaming

/// Sum of a slice with four independent SIMD accumulators, so the loop is bound by loads, not by
/// the latency of one add chain. The sum is returned so the compiler cannot drop the reads.
func streamSum(_ base: UnsafePointer<Float>, count: Int) -> Float {
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
    let raw = UnsafeRawPointer(base)
    var i = 0
    while i + 32 <= count {
        a0 += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        a1 += raw.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
        a2 += raw.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD8<Float>.self)
        a3 += raw.loadUnaligned(fromByteOffset: (i + 24) * 4, as: SIMD8<Float>.self)
        i += 32
    }
    var sum = (a0 + a1 + a2 + a3).sum()
    while i < count { sum += base[i]; i += 1 }
    return sum
}

/// What the reader threads share: the buffer, a stop flag and the sums (kept so the reads stay live).
final class StreamWorkers: @unchecked Sendable {
    let buffer: UnsafeMutablePointer<Float>
    let count: Int
    let start = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var stopped = false, sums: Float = 0, pinned = 0

    init(count: Int) {
        self.count = count
        buffer = .allocate(capacity: count)
        for i in 0..<count { buffer[i] = Float(i & 1023) * 1e-3 }  // touch every page before timing
    }
    deinit { buffer.deallocate() }

    var isStopped: Bool { lock.withLock { stopped } }
    var pinnedThreads: Int { lock.withLock { pinned } }
    var checksum: Float { lock.withLock { sums } }
    func stop() { lock.withLock { stopped = true } }

    func spawn(index: Int, of threads: Int, cpu: Int?) {
        let first = count * index / threads, last = count * (index + 1) / threads
        Thread {
            if let cpu, pinCurrentThread(to: cpu) { self.lock.withLock { self.pinned += 1 } }
            while true {
                self.start.wait()
                if self.isStopped { self.done.signal(); return }
                let sum = streamSum(self.buffer + first, count: last - first)
                self.lock.withLock { self.sums += sum }
                self.done.signal()
            }
        }.start()
    }

    /// One pass over the whole buffer by all threads; returns its duration in seconds.
    func pass(threads: Int) -> Double {
        let t0 = now()
        for _ in 0..<threads { start.signal() }
        for _ in 0..<threads { done.wait() }
        return now() - t0
    }
}

func measureStream(megabytes: Int, threads: Int, seconds: Double) {
    let workers = StreamWorkers(count: megabytes * 1_000_000 / 4)
    let cpus = allowedCPUs()
    for t in 0..<threads { workers.spawn(index: t, of: threads, cpu: cpus.isEmpty ? nil : cpus[t % cpus.count]) }
    var rates: [Double] = []
    let began = now()
    while rates.count < 4 || (now() - began < seconds && rates.count < 200) {
        rates.append(Double(workers.count * 4) / workers.pass(threads: threads) / 1e9)
    }
    workers.stop()
    _ = workers.pass(threads: threads)
    rates.removeFirst()  // first pass: cold TLB and caches
    emit(["kind": "stream", "megabytes": megabytes, "threads": threads, "pinned_threads": workers.pinnedThreads,
          "cpus": Array(cpus.prefix(threads)), "gb_per_s_best": rates.max()!, "gb_per_s_median": median(rates),
          "repetitions": rates.count, "checksum": Double(workers.checksum)])
}

// MARK: - First touch of fresh memory

func measureTouch(megabytes: Int, threads: Int) {
    let bytes = megabytes * 1_000_000
    guard let mapping = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), mapping != MAP_FAILED else {
        FileHandle.standardError.write(Data("mmap of \(megabytes) MB failed\n".utf8))
        exit(1)
    }
    defer { munmap(mapping, bytes) }
    let base = mapping.assumingMemoryBound(to: UInt8.self)
    let page = 4096
    let group = DispatchGroup()
    let t0 = now()
    for index in 0..<threads {
        let first = bytes * index / threads / page * page, last = bytes * (index + 1) / threads
        let address = Int(bitPattern: base)  // a pointer is not Sendable; its address is
        group.enter()
        Thread {
            let bytes = UnsafeMutablePointer<UInt8>(bitPattern: address)!
            var offset = first
            while offset < last { bytes[offset] = 1; offset += page }
            group.leave()
        }.start()
    }
    group.wait()
    let seconds = now() - t0
    emit(["kind": "touch", "megabytes": megabytes, "threads": threads, "seconds": seconds,
          "gb_per_s": Double(bytes) / seconds / 1e9])
}

// MARK: - sgemm

func measureSgemm(M: Int, K: Int, N: Int, threads: Int, seconds: Double) {
    openblas_set_num_threads(Int32(threads))
    let x = UnsafeMutablePointer<Float>.allocate(capacity: M * K)
    let w = UnsafeMutablePointer<Float>.allocate(capacity: N * K)
    let y = UnsafeMutablePointer<Float>.allocate(capacity: M * N)
    defer { x.deallocate(); w.deallocate(); y.deallocate() }
    for i in 0..<(M * K) { x[i] = Float(i % 97) * 1e-2 }
    for i in 0..<(N * K) { w[i] = Float(i % 89) * 1e-2 }
    func run() {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(M), Int32(N), Int32(K),
                    1, x, Int32(K), w, Int32(K), 0, y, Int32(N))
    }
    run()  // warm-up: OpenBLAS starts its threads and allocates its buffers
    var rates: [Double] = []
    let began = now()
    while rates.count < 5 || (now() - began < seconds && rates.count < 2000) {
        let t0 = now()
        run()
        rates.append(2.0 * Double(M) * Double(N) * Double(K) / (now() - t0) / 1e9)
    }
    emit(["kind": "sgemm", "m": M, "k": K, "n": N, "threads": threads, "gflop_per_s_best": rates.max()!,
          "gflop_per_s_median": median(rates), "repetitions": rates.count, "library": "OpenBLAS",
          "openblas_core": String(cString: openblas_get_corename()), "openblas_threads": Int(openblas_get_num_threads())])
}

// MARK: - Main

let arguments = CommandLine.arguments.dropFirst().map { $0 }
func argument(_ index: Int, _ fallback: Double) -> Double { index < arguments.count ? Double(arguments[index]) ?? fallback : fallback }
switch arguments.first {
case "stream":
    measureStream(megabytes: Int(argument(1, 500)), threads: Int(argument(2, 2)), seconds: argument(3, 3))
case "touch":
    measureTouch(megabytes: Int(argument(1, 500)), threads: Int(argument(2, 2)))
case "sgemm" where arguments.count >= 4:
    measureSgemm(M: Int(argument(1, 32)), K: Int(argument(2, 768)), N: Int(argument(3, 3072)),
                 threads: Int(argument(4, 2)), seconds: argument(5, 2))
default:
    FileHandle.standardError.write(Data("usage: MachineCeilings stream [MB] [THREADS] [SECONDS] | touch [MB] [THREADS] | sgemm M K N [THREADS] [SECONDS]\n".utf8))
    exit(2)
}
