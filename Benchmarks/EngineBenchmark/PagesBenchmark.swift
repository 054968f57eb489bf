import Foundation
@_spi(Benchmarks) import GPTNeo

// Mode `pages`: the same model loaded with weights in 2 MiB pages (`WeightSettings.hugePages`) and in
// 4 KiB pages (the default), loads and then decode steps and prefills alternated in one process,
// outputs compared bitwise (the pages hold the same numbers; only address translation differs).

/// AnonHugePages of /proc/self/smaps_rollup in MB: anonymous memory this process has in huge pages.
func anonymousHugePageMegabytes() -> Double {
    let rollup = (try? String(contentsOfFile: "/proc/self/smaps_rollup", encoding: .utf8)) ?? ""
    guard let line = rollup.split(separator: "\n").first(where: { $0.hasPrefix("AnonHugePages:") }) else { return 0 }
    return Double(line.split(whereSeparator: { $0 == " " }).dropFirst().first.map(String.init) ?? "0").map { $0 / 1024 } ?? 0
}

func runPagesBenchmark(directory: URL, settings: WeightSettings, threads: Int, streamCounts: [Int], steps: Int,
                       tokens: (Int, Int) -> [Int]) throws {
    let names = ["2 MiB pages", "4 KiB pages"]
    var loads: [[Double]] = [[], []]
    var models: [GPTNeoModel?] = [nil, nil]
    for round in 0..<4 {
        for order in 0..<2 {
            let variant = (round + order) % 2
            models[variant] = nil
            var variantSettings = settings
            variantSettings.hugePages = variant == 0
            let before = anonymousHugePageMegabytes()
            loads[variant].append(try seconds {
                models[variant] = try GPTNeoModel.load(directory: directory, threads: threads, settings: variantSettings)
            })
            if round == 3 { print("\(names[variant]): \(format(anonymousHugePageMegabytes() - before)) MB of the model in huge pages") }
        }
    }
    print("load, median of 4 alternated: " + names.indices.map { "\(names[$0]) \(format(median(loads[$0]), 3)) s \(loads[$0].map { format($0, 3) })" }.joined(separator: ", "))
    let engines = models.map { GPTNeoEngine(model: $0!, threads: threads) }

    // Prefill of 512 tokens, alternated.
    let prompt = tokens(512, 3)
    var prefill: [[Double]] = [[], []]
    var prefillLogits: [[Float]] = [[], []]
    for round in 0..<7 {
        for order in 0..<2 {
            let variant = (round + order) % 2
            let cache = engines[variant].makeCache(capacity: 512)
            let wall = try seconds { prefillLogits[variant] = try engines[variant].forward([ForwardItem(cache: cache, tokens: prompt)])[0].logits }
            if round > 0 { prefill[variant].append(wall) }
        }
        guard prefillLogits[0] == prefillLogits[1] else { fatalError("pages: prefill logits differ") }
    }
    print("prefill 512: " + names.indices.map { "\(names[$0]) \(format(median(prefill[$0]) * 1000)) ms" }.joined(separator: ", ")
          + "; 4 KiB / 2 MiB time, median of pairs \(format(median(zip(prefill[1], prefill[0]).map { $0 / $1 }), 3))×")

    for argmaxOnly in [false, true] {
        for streams in streamCounts {
            let caches = engines.map { engine in (0..<streams).map { _ in engine.makeCache(capacity: 16 + steps + 2) } }
            var next: [[Int]] = [[], []]
            var times: [[Double]] = [[], []]
            let tokenOf = { greedyToken($0, vocabularySize: engines[0].model.config.vocabSize) }
            for variant in 0..<2 {
                next[variant] = try engines[variant].forward(caches[variant].enumerated().map { ForwardItem(cache: $1, tokens: tokens(16, $0)) }).map(tokenOf)
            }
            for step in 0...steps {
                var logits: [[Float]] = [[], []]
                for order in 0..<2 {
                    let variant = (step + order) % 2
                    var outputs: [ForwardOutput] = []
                    let wall = try seconds {
                        outputs = try engines[variant].forward(caches[variant].indices.map {
                            ForwardItem(cache: caches[variant][$0], tokens: [next[variant][$0]], argmaxOnly: argmaxOnly)
                        })
                    }
                    if step > 0 { times[variant].append(wall) }
                    next[variant] = outputs.map(tokenOf)
                    logits[variant] = outputs.flatMap(\.logits)
                }
                guard next[0] == next[1], logits[0] == logits[1] else { fatalError("pages: outputs differ at step \(step)") }
            }
            print("decode \(streams) stream(s)\(argmaxOnly ? ", argmax only" : ""), ms/step: "
                  + names.indices.map { "\(names[$0]) \(format(median(times[$0]) * 1000, 2))" }.joined(separator: ", ")
                  + "; 4 KiB / 2 MiB time, median of \(steps) pairs \(format(median(zip(times[1], times[0]).map { $0 / $1 }), 3))×; outputs identical")
        }
    }
}
