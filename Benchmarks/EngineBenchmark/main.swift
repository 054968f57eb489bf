import Foundation
@_spi(Benchmarks) import GPTNeo

// Engine benchmark (not a test). Usage, release build:
//   [GPTNEO_THREADS=N] [GPTNEO_DTYPE=...] [GPTNEO_QUANTIZATION=...] [GPTNEO_ROWS=1,8,16] swift run -c release EngineBenchmark kernels
//   [GPTNEO_THREADS=N] swift run -c release EngineBenchmark regions
//   python Benchmarks/EngineBenchmark/make_random_125m.py /tmp/gpt-neo-125M-random
//   [GPTNEO_DTYPE=auto|float32|float16|bfloat16] [GPTNEO_QUANTIZATION=none|int8] \
//     [GPTNEO_STREAMS=1,8,32,64] [GPTNEO_CHUNK=128] swift run -c release EngineBenchmark /tmp/gpt-neo-125M-random [load|forward|decode|long|all|step]
//   swift run -c release EngineBenchmark MODEL_DIRECTORY contexts [CONTEXTS [STREAMS [STEPS]]]   (default 100,500,1500 32,64 8)
//   [GPTNEO_STREAMS=…] [GPTNEO_STEPS=24] swift run -c release EngineBenchmark MODEL_DIRECTORY greedy   (argmax-only steps against full logits)
//   [GPTNEO_STREAMS=…] [GPTNEO_STEPS=24] swift run -c release EngineBenchmark MODEL_DIRECTORY pages   (weights in 2 MiB pages against 4 KiB pages)
//   swift run -c release EngineBenchmark MODEL_DIRECTORY digest   (hashes of outputs: compare two builds bitwise)
//   swift run -c release EngineBenchmark MODEL_DIRECTORY accuracy TOKENS.json   (make_accuracy_tokens.py)
// Reports: matmul GFLOP/s per shape against the previous kernel and sgemm (KernelBenchmark.swift); one
// forward pass of 512 tokens; decode tokens/s for 1, 8, 32 and 64 streams; one stream's decode step at
// a 1000-token context; decode of many streams at long contexts (mode `contexts`, not part of `all`).

// MARK: - Timing

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// A reading of the CPU time (user + system) of every thread of this process; `elapsed()` is the CPU time
/// all of them used since: unlike wall time, not inflated by other processes on a shared machine.
///
/// Each thread's own clock, not the process clock (CLOCK_PROCESS_CPUTIME_ID): Linux brings a running
/// thread's clock up to date when it is read, but the process clock adds the other threads' times as of
/// their last scheduler tick or switch. A pool worker that never stops between regions then lags by up
/// to a tick: measurements of ~2 ms on 2 threads read as little as half the worker's time, and a kernel
/// came out at 1.4-1.9× one core's FMA peak per CPU-second (LM head rates that jumped 2× between runs).
/// The thread list is read outside the measured interval; a thread started within it counts whole.
struct CPUClocks {
    private let threads: [pid_t]
    private let seconds: [Double]

    init() {
        threads = CPUClocks.threadIDs()
        seconds = threads.map(CPUClocks.threadSeconds)
    }

    func elapsed() -> Double {
        var total = zip(threads, seconds).reduce(0) { $0 + max(0, CPUClocks.threadSeconds($1.0) - $1.1) }
        let known = Set(threads)
        for thread in CPUClocks.threadIDs() where !known.contains(thread) { total += CPUClocks.threadSeconds(thread) }
        return total
    }

    private static func threadIDs() -> [pid_t] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []).compactMap { pid_t($0) }
    }

    /// The thread's CPU clock: Linux's per-thread scheduler clock id for `thread` (what
    /// pthread_getcpuclockid gives for a pthread); 0 for a thread that has exited.
    private static func threadSeconds(_ thread: pid_t) -> Double {
        var time = timespec()
        guard clock_gettime(clockid_t((~thread) << 3 | 6), &time) == 0 else { return 0 }
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

func format(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }

// MARK: - Main

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write("usage: EngineBenchmark kernels | EngineBenchmark regions | EngineBenchmark MODEL_DIRECTORY [forward|decode|long|all|step|contexts|digest] (GPTNEO_THREADS=N to set threads)\n".data(using: .utf8)!)
    exit(2)
}
/// GPTNEO_THREADS as for the server, else every CPU this process may use.
let threads = ProcessInfo.processInfo.environment["GPTNEO_THREADS"].flatMap { Int($0) } ?? availableCPUCount()
print("threads: \(threads) (\(availableCPUCount()) available to this process)")

if arguments[1] == "regions" {
    runRegionBenchmark(threads: threads)
    exit(0)
}
let mode = arguments.count >= 3 ? arguments[2] : "all"
if mode == "accuracy" {
    guard arguments.count >= 4 else { FileHandle.standardError.write("usage: EngineBenchmark MODEL accuracy TOKENS.json\n".data(using: .utf8)!); exit(2) }
    try runAccuracyBenchmark(directory: URL(fileURLWithPath: arguments[1]), tokensFile: URL(fileURLWithPath: arguments[3]), threads: threads)
    exit(0)
}
/// GPTNEO_DTYPE and GPTNEO_QUANTIZATION as for the server.
let environment = ProcessInfo.processInfo.environment
guard let dtype = WeightDType(rawValue: environment["GPTNEO_DTYPE"] ?? "auto"),
      let quantization = WeightQuantization(rawValue: environment["GPTNEO_QUANTIZATION"] ?? "none") else {
    FileHandle.standardError.write("GPTNEO_DTYPE must be auto|float32|float16|bfloat16, GPTNEO_QUANTIZATION none|int8\n".data(using: .utf8)!)
    exit(2)
}
if arguments[1] == "kernels" {
    let settings = WeightSettings(dtype: dtype, quantization: quantization)
    runKernelBenchmark(threads: threads, weightFormat: settings.format(stored: nil))
    exit(0)
}
var model: GPTNeoModel!
let loadTime = try seconds {
    model = try GPTNeoModel.load(directory: URL(fileURLWithPath: arguments[1]), threads: threads,
                                 settings: WeightSettings(dtype: dtype, quantization: quantization))
}
let config = model.config
/// VmRSS, RssFile and VmHWM of /proc/self/status in MB (resident memory, the part of it that is mapped
/// files, and the peak resident memory so far: during the load).
func residentMegabytes() -> (total: Double, files: Double, peak: Double) {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    func field(_ name: String) -> Double {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
        return Double(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.map(String.init) ?? "0").map { $0 / 1024 } ?? 0
    }
    return (field("VmRSS"), field("RssFile"), field("VmHWM"))
}
let resident = residentMegabytes()
print("model: \(config.numLayers) layers, hidden \(config.hiddenSize), vocab \(config.vocabSize); weights \(model.weightFormat.rawValue), "
      + "\(format(Double(model.weightBytes) / 1e6)) MB; loaded in \(format(loadTime, 2)) s; "
      + "resident \(format(resident.total)) MB (\(format(resident.files)) MB of it mapped files), peak \(format(resident.peak)) MB")

/// Deterministic pseudo-random tokens.
func tokens(_ count: Int, seed: Int) -> [Int] { (0..<count).map { ($0 * 7919 + seed * 104729) % config.vocabSize } }

if mode == "forward" || mode == "all" {
    let engine = GPTNeoEngine(model: model, threads: threads)
    let input = tokens(512, seed: 1)
    // GPTNEO_CHUNK=128: the prompt in steps of that many tokens, as the server's prefill chunks.
    let chunk = environment["GPTNEO_CHUNK"].flatMap { Int($0) } ?? input.count
    var times: [Double] = [], cpu: [Double] = []
    for _ in 0..<6 {
        let cache = engine.makeCache(capacity: 512)
        let clocks = CPUClocks()
        times.append(try seconds {
            for start in stride(from: 0, to: input.count, by: chunk) {
                _ = try engine.forward([ForwardItem(cache: cache, tokens: Array(input[start..<min(input.count, start + chunk)]))])
            }
        })
        cpu.append(clocks.elapsed())
    }
    times.removeFirst(); cpu.removeFirst()  // warm-up: page faults of the mapping, scratch allocation
    print("forward 512 tokens in chunks of \(chunk): median \(format(median(times) * 1000)) ms, min \(format(times.min()! * 1000)) ms wall "
          + "(runs: \(times.map { format($0 * 1000) })); CPU time median \(format(median(cpu) * 1000)) ms")
}

if mode == "decode" || mode == "all" {
    let engine = GPTNeoEngine(model: model, threads: threads)
    // GPTNEO_STREAMS=1,8 to run fewer (a 2.7B model takes minutes at 64 streams).
    let streamCounts = environment["GPTNEO_STREAMS"].map { $0.split(separator: ",").compactMap { Int($0) } } ?? [1, 8, 32, 64]
    for streams in streamCounts {
        let caches = (0..<streams).map { _ in engine.makeCache(capacity: 64) }
        _ = try engine.forward(caches.enumerated().map { ForwardItem(cache: $1, tokens: tokens(16, seed: $0)) })
        let (perStep, cpuPerStep) = try timeDecode(engine, caches: caches, steps: 24)
        print("decode \(streams) stream(s): \(format(perStep * 1000)) ms/step wall, \(format(Double(streams) / perStep)) tokens/s aggregate; "
              + "CPU \(format(cpuPerStep * 1000)) ms/step")
    }
}

/// `steps` greedy decode steps of one stream after a 16-token prompt: the per-token path alone, for
/// `valgrind --tool=callgrind --toggle-collect='*decodeSteps*'` (mode `step`, not part of `all`).
@inline(never) func decodeSteps(_ engine: GPTNeoEngine, cache: KVCache, steps: Int) throws {
    var next = 50256
    for _ in 0..<steps {
        let logits = try engine.forward([ForwardItem(cache: cache, tokens: [next])])[0].logits
        next = logits.indices.max { logits[$0] < logits[$1] }!
    }
}

if mode == "greedy" {
    let engine = GPTNeoEngine(model: model, threads: threads)
    let streamCounts = environment["GPTNEO_STREAMS"].map { $0.split(separator: ",").compactMap { Int($0) } } ?? [1, 2, 4, 8, 16, 32, 64]
    try runGreedyBenchmark(engine, streamCounts: streamCounts, steps: Int(environment["GPTNEO_STEPS"] ?? "") ?? 24)
}

if mode == "pages" {
    let streamCounts = environment["GPTNEO_STREAMS"].map { $0.split(separator: ",").compactMap { Int($0) } } ?? [1, 8, 32, 64]
    try runPagesBenchmark(directory: URL(fileURLWithPath: arguments[1]), settings: WeightSettings(dtype: dtype, quantization: quantization),
                          threads: threads, streamCounts: streamCounts, steps: Int(environment["GPTNEO_STEPS"] ?? "") ?? 24,
                          tokens: { tokens($0, seed: $1) })
}

if mode == "step" {
    let engine = GPTNeoEngine(model: model, threads: threads)
    let cache = engine.makeCache(capacity: 64)
    _ = try engine.forward([ForwardItem(cache: cache, tokens: tokens(16, seed: 5))])
    try decodeSteps(engine, cache: cache, steps: 1)  // warm-up: scratch and KV blocks
    let steps = 8
    let clocks = CPUClocks()
    try decodeSteps(engine, cache: cache, steps: steps)
    print("decode 1 stream: CPU \(format(clocks.elapsed() / Double(steps) * 1000, 2)) ms/step over \(steps) steps")
}

if mode == "contexts" {
    // CONTEXTS and STREAMS: comma-separated lists after the mode, e.g. `contexts 100,500,1500 32,64`;
    // then the decode steps timed (default 8).
    func list(_ index: Int, _ fallback: [Int]) -> [Int] {
        arguments.count > index ? arguments[index].split(separator: ",").compactMap { Int($0) } : fallback
    }
    let engine = GPTNeoEngine(model: model, threads: threads)
    try runContextDecodeBenchmark(engine, contexts: list(3, [100, 500, 1500]), streamCounts: list(4, [32, 64]), steps: list(5, [8])[0],
                                  prompt: { tokens($0, seed: 11) })
}

if mode == "digest" {
    try runDigestBenchmark(model, threads: threads, tokens: { tokens($0, seed: $1) })
}

if mode == "long" || mode == "all" {
    // Attention over a long cached context dominates here, not the weights.
    let engine = GPTNeoEngine(model: model, threads: threads)
    let cache = engine.makeCache(capacity: 1100)
    _ = try engine.forward([ForwardItem(cache: cache, tokens: tokens(1000, seed: 3), logitRows: .none)])
    var next = 50256
    var cpu: [Double] = []
    for _ in 0..<24 {
        let clocks = CPUClocks()
        let logits = try engine.forward([ForwardItem(cache: cache, tokens: [next])])[0].logits
        cpu.append(clocks.elapsed())
        next = logits.indices.max { logits[$0] < logits[$1] }!
    }
    print("decode 1 stream at context 1000: CPU \(format(median(cpu) * 1000, 2)) ms/step (median)")
}

if mode == "pairbytes" {
    // 512-token forwards alternated between two sizes of the pair of panels that row tiles of many rows
    // walk together (FloatKernel.swift), in one process: GPTNEO_PAIR_KIB=256,512.
    let sizes = (environment["GPTNEO_PAIR_KIB"] ?? "256,512").split(separator: ",").compactMap { Int($0) }
    let pairs = environment["GPTNEO_PAIRS"].flatMap { Int($0) } ?? 12
    let engine = GPTNeoEngine(model: model, threads: threads)
    let input = tokens(512, seed: 1)
    func forwardSeconds(_ kib: Int) throws -> Double {
        wideManyRowsPairBytes = kib << 10
        let cache = engine.makeCache(capacity: 512)
        return try seconds { _ = try engine.forward([ForwardItem(cache: cache, tokens: input)]) }
    }
    for kib in sizes { _ = try forwardSeconds(kib) }
    var times = sizes.map { _ in [Double]() }
    for pair in 0..<pairs {
        for index in (pair % 2 == 0 ? Array(sizes.indices) : sizes.indices.reversed()) { times[index].append(try forwardSeconds(sizes[index])) }
    }
    for (index, kib) in sizes.enumerated() {
        let ratios = zip(times[0], times[index]).map { $0 / $1 }
        print("forward 512 tokens, pairs of \(kib) KiB: median \(format(median(times[index]) * 1000)) ms; "
              + "first size / this, per pair: \(ratios.map { format($0, 3) }) (median \(format(median(ratios), 3)))")
    }
}
