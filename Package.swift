// swift-tools-version: 6.1
import PackageDescription
import Foundation

// MARK: - Target CPU
// Swift's SIMD types only lower to AVX2/FMA instructions when the compiler is told the target CPU;
// without it `SIMD8<Float>.addingProduct` becomes a library call and the kernels run ~10x slower.
// The default on x86_64 is `haswell` (AVX2, FMA, BMI2: the x86-64-v3 level, which the clang
// importer does not accept by that name). Override with
// `GPTNEO_TARGET_CPU=x86-64` (any x86_64), another LLVM CPU name (`znver3`), or `GPTNEO_TARGET_CPU=generic`
// to pass no flag at all. A binary built for haswell stops with SIGILL on an older CPU.
#if arch(x86_64)
let defaultTargetCPU = "haswell"
#else
let defaultTargetCPU = "generic"
#endif
let targetCPU = ProcessInfo.processInfo.environment["GPTNEO_TARGET_CPU"] ?? defaultTargetCPU
let hotLoopSettings: [SwiftSetting] = targetCPU == "generic" ? [] : [.unsafeFlags(["-target-cpu", targetCPU])]

let package = Package(
    name: "gptneo-server",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gptneo-server", targets: ["gptneo-server"]),
        .library(name: "GPTNeo", targets: ["GPTNeo"]),
        .library(name: "Tokenizer", targets: ["Tokenizer"]),
        .library(name: "HTTPServer", targets: ["HTTPServer"]),
    ],
    dependencies: [
        // Settings from flags, environment and a YAML file (YAML trait: Yams).
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0", traits: ["YAML"]),
        // The YAML parser swift-configuration uses; read directly to find unknown keys in a config file.
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        // The `convert` subcommand's arguments and help (the server's own settings come from the settings table).
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // One process lifecycle: ServiceGroup, graceful shutdown on SIGTERM/SIGINT, SIGHUP.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
    ],
    targets: [
        // MARK: C libraries from Debian -dev packages
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),

        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),

        .systemLibrary(
            name: "CNGHTTP2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]
        ),
        // MARK: C header: the prefetch instruction for the matmul kernel
        .systemLibrary(name: "CPrefetch"),
        // MARK: C header: 16-bit and int8 weights widened to floats in the matmul kernel
        .systemLibrary(name: "CWidening"),
        // MARK: C header: the spin-wait hint for the engine's worker threads
        .systemLibrary(name: "CSpinPause"),
        // MARK: C header: the int8 × int8 integer dot-product kernel for int8 weights
        .systemLibrary(name: "CInt8Dot"),
        // MARK: C header: the float32 kernel for CPUs with AVX-512F, chosen at run time
        .systemLibrary(name: "CFloat512"),
        // MARK: C header: the prefill's attention kernels for CPUs with AVX-512F, chosen at run time
        .systemLibrary(name: "CAttention512"),
        // MARK: C header: gelu_new with AVX-512F, the Swift code's arithmetic lane for lane
        .systemLibrary(name: "CActivation512"),
        // MARK: C header: one core's AVX-512 FMA peak, for EngineBenchmark only
        .systemLibrary(name: "CFMAPeak"),
        // MARK: C header: glibc's malloc_trim, to return the heap pages loading leaves free
        .systemLibrary(name: "CMalloc"),

        // MARK: Model: GPT-Neo forward pass, checkpoint loading, KV cache, task heads
        .target(
            name: "GPTNeo",
            dependencies: ["CPrefetch", "CWidening", "CSpinPause", "CInt8Dot", "CFloat512", "CAttention512", "CActivation512", "CMalloc"],
            // Optimized even in debug builds: unoptimized SIMD kernels make every test that runs the
            // model (engine, batcher, API) many times slower.
            swiftSettings: hotLoopSettings + [.unsafeFlags(["-O"], .when(configuration: .debug))]
        ),

        // MARK: GPT-2 byte-level BPE
        .target(
            name: "Tokenizer",
            swiftSettings: hotLoopSettings
        ),

        // MARK: HTTP/1.1 and HTTP/2 server over TCP or TLS (no model dependency)
        .target(
            name: "HTTPServer",
            dependencies: ["COpenSSL", "CNGHTTP2", .product(name: "Logging", package: "swift-log")]
        ),

        // MARK: Serving: continuous batching, sampling, generation
        .target(
            name: "Batcher",
            dependencies: [
                "GPTNeo", "Tokenizer",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // Optimized in debug builds too (as GPTNeo): sampling and logprobs loop over the whole
            // vocabulary for every token, which unoptimized makes the model tests several times slower.
            swiftSettings: hotLoopSettings + [.unsafeFlags(["-O"], .when(configuration: .debug))]
        ),

        // MARK: OpenAI-compatible API on top of the batcher and the HTTP server
        .target(
            name: "InferenceAPI",
            dependencies: [
                "Batcher", "GPTNeo", "Tokenizer", "HTTPServer",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: The executable: settings, logging, lifecycle; wires the libraries together
        .executableTarget(
            name: "gptneo-server",
            dependencies: [
                "InferenceAPI", "Batcher", "GPTNeo", "Tokenizer", "HTTPServer", "CMalloc",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: Benchmarks (run by hand: swift run -c release TokenizerBenchmark)
        .executableTarget(
            name: "TokenizerBenchmark",
            dependencies: ["Tokenizer"],
            path: "Benchmarks/TokenizerBenchmark",
            swiftSettings: hotLoopSettings
        ),

        // MARK: Benchmarks (not tests): swift run -c release EngineBenchmark MODEL_DIR; sgemm is the anchor
        .executableTarget(
            name: "EngineBenchmark",
            dependencies: ["GPTNeo", "COpenBLAS", "CFMAPeak"],
            path: "Benchmarks/EngineBenchmark",
            exclude: ["make_random_125m.py", "make_accuracy_tokens.py"],
            swiftSettings: hotLoopSettings
        ),

        // MARK: Fuzzing: `swift build --sanitize fuzzer --sanitize address --product HTTPParserFuzzer` (see Fuzz/README.md)
        .executableTarget(
            name: "HTTPParserFuzzer",
            dependencies: ["HTTPServer"],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),

        // MARK: Fuzzing: `swift build -c release --sanitize fuzzer --sanitize address --product HTTP2Fuzzer` (see Fuzz/README.md)
        .executableTarget(
            name: "HTTP2Fuzzer",
            dependencies: ["HTTPServer"],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),

        // MARK: Fuzzing: `swift build -c release --sanitize fuzzer -Xswiftc -sanitize=fuzzer,address --product CheckpointFuzzer` (see Fuzz/README.md)
        .executableTarget(
            name: "CheckpointFuzzer",
            dependencies: ["GPTNeo"],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),

        // MARK: Benchmark: trivial endpoint for wrk (Benchmarks/http/run.sh)
        .executableTarget(
            name: "HTTPBenchServer",
            dependencies: ["HTTPServer", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/http/HTTPBenchServer"
        ),

        // MARK: Batcher benchmark (run by hand: swift run -c release BatcherBenchmark MODEL_DIRECTORY)
        .executableTarget(
            name: "BatcherBenchmark",
            dependencies: ["Batcher", "GPTNeo", "Tokenizer"],
            path: "Benchmarks/BatcherBenchmark",
            swiftSettings: hotLoopSettings
        ),

        // MARK: Machine ceilings for the serving benchmark (scripts/bench.sh): weight streaming, sgemm
        .executableTarget(
            name: "MachineCeilings",
            dependencies: ["COpenBLAS"],
            path: "Benchmarks/serving/MachineCeilings",
            swiftSettings: hotLoopSettings
        ),

        // MARK: Tests
        .testTarget(name: "GPTNeoTests", dependencies: ["GPTNeo"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer"]),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "COpenSSL"]),
        .testTarget(name: "BatcherTests", dependencies: ["Batcher", "GPTNeo", "Tokenizer"]),
        .testTarget(name: "ServerTests", dependencies: ["gptneo-server", "InferenceAPI", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "InferenceAPITests", dependencies: ["InferenceAPI", "HTTPServer", .product(name: "Logging", package: "swift-log")]),
    ]
)
