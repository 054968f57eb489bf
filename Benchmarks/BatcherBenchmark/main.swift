import Batcher
import Foundation
import GPTNeo
import Tokenizer

// Batcher benchmark (not a test): aggregate generated tokens/s for 1, 8 and 32 concurrent streams.
// Release build, on a 125M-shaped checkpoint with random weights (generate it, don't commit it):
//   python Benchmarks/EngineBenchmark/make_random_125m.py /tmp/gpt-neo-125M-random   (engine's generator)
//   swift run -c release BatcherBenchmark /tmp/gpt-neo-125M-random [--streams 1,8,32]
//       [--prompt-tokens 32] [--max-tokens 64] [--tokenizer Tests/Fixtures/tiny-gpt-neo]
// Every stream samples with temperature 1 (OpenAI's default) and ignores EOS, so each produces exactly
// --max-tokens tokens. Reports wall time, tokens/s, time to first token and CPU time (the machine may be
// shared: CPU seconds per token is the steadier figure).

// MARK: - Arguments

struct Options {
    var model = ""
    var tokenizer: String?
    var streams = [1, 8, 32]
    var promptTokens = 32
    var maxTokens = 64

    init(_ arguments: [String]) {
        var rest = arguments.dropFirst()
        while let argument = rest.popFirst() {
            switch argument {
            case "--streams": streams = (rest.popFirst() ?? "").split(separator: ",").compactMap { Int($0) }
            case "--prompt-tokens": promptTokens = Int(rest.popFirst() ?? "") ?? promptTokens
            case "--max-tokens": maxTokens = Int(rest.popFirst() ?? "") ?? maxTokens
            case "--tokenizer": tokenizer = rest.popFirst()
            default: model = argument
            }
        }
    }
}

let options = Options(CommandLine.arguments)
guard !options.model.isEmpty, !options.streams.isEmpty else {
    FileHandle.standardError.write(Data("usage: BatcherBenchmark MODEL_DIRECTORY [--streams 1,8,32] [--prompt-tokens N] [--max-tokens N] [--tokenizer DIR]\n".utf8))
    exit(2)
}

// MARK: - Measuring

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

struct StreamResult: Sendable {
    var tokens: Int
    var firstTokenSeconds: Double
}

/// Runs `streams` requests at once; returns each stream's token count and time to first token.
func run(_ batcher: Batcher, streams: Int, promptTokens: Int, maxTokens: Int) async throws -> [StreamResult] {
    try await withThrowingTaskGroup(of: StreamResult.self) { group in
        let start = DispatchTime.now().uptimeNanoseconds
        for stream in 0..<streams {
            var parameters = GenerationParameters()
            parameters.maxTokens = maxTokens
            parameters.ignoreEOS = true
            parameters.seed = UInt64(stream)
            let prompt = (0..<promptTokens).map { (stream * 7919 + $0 * 104_729) % 50_000 }
            let events = try batcher.submit(GenerationRequest(promptTokens: prompt, parameters: parameters))
            group.addTask {
                var result = StreamResult(tokens: 0, firstTokenSeconds: 0)
                for try await event in events {
                    if case .token = event {
                        if result.tokens == 0 {
                            result.firstTokenSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                        }
                        result.tokens += 1
                    }
                }
                return result
            }
        }
        var results: [StreamResult] = []
        for try await result in group { results.append(result) }
        return results
    }
}

func format(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }

// MARK: - Main

let modelURL = URL(fileURLWithPath: options.model)
let model = try GPTNeoModel.load(directory: modelURL)
let tokenizerURL = options.tokenizer.map { URL(fileURLWithPath: $0) }
    ?? (FileManager.default.fileExists(atPath: modelURL.appendingPathComponent("vocab.json").path)
        ? modelURL : URL(fileURLWithPath: "Tests/Fixtures/tiny-gpt-neo"))
let tokenizer = try GPT2Tokenizer.load(directory: tokenizerURL)
let config = model.config
print("model: \(config.numLayers) layers, hidden \(config.hiddenSize), vocabulary \(config.vocabSize), window \(config.windowSize)")
print("each stream: \(options.promptTokens) prompt tokens, \(options.maxTokens) generated (temperature 1, EOS ignored)")

var configuration = BatcherConfiguration()
configuration.maxRunningSequences = max(64, options.streams.max() ?? 1)
let batcher = Batcher(model: model, tokenizer: tokenizer, configuration: configuration)
_ = try await run(batcher, streams: 2, promptTokens: options.promptTokens, maxTokens: 4)  // warm-up: pages in the weights

print("")
print("| streams | tokens | wall s | tokens/s | per-stream tokens/s | median TTFT ms | CPU s/token |")
print("|--------:|-------:|-------:|---------:|--------------------:|---------------:|------------:|")
for streams in options.streams {
    let cpuStart = cpuSeconds()
    let wallStart = DispatchTime.now().uptimeNanoseconds
    let results = try await run(batcher, streams: streams, promptTokens: options.promptTokens, maxTokens: options.maxTokens)
    let wall = Double(DispatchTime.now().uptimeNanoseconds - wallStart) / 1e9
    let cpu = cpuSeconds() - cpuStart
    let tokens = results.reduce(0) { $0 + $1.tokens }
    let ttft = results.map(\.firstTokenSeconds).sorted()[results.count / 2]
    print("| \(streams) | \(tokens) | \(format(wall, 2)) | \(format(Double(tokens) / wall)) | "
          + "\(format(Double(tokens) / wall / Double(streams))) | \(format(ttft * 1000, 0)) | \(format(cpu / Double(tokens), 4)) |")
}
await batcher.shutdown(gracePeriod: .seconds(1))
