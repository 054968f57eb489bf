// Encoding speed of GPT2Tokenizer on English text, one core.
//
//     swift run -c release TokenizerBenchmark [text files...]
//
// Without arguments it uses the English cases of the golden corpus (prose and generated real text).
// Reports MB/s (UTF-8 bytes of input per second) for a cold pass (fresh tokenizer, empty word cache) and
// for warm passes (cache filled, as in a server that has seen some traffic). The text is encoded in
// chunks of about 4 KB, the size of a long prompt.
import Foundation
import Tokenizer

let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let vocabularyDirectory = repositoryRoot.appendingPathComponent("Tests/Fixtures/tiny-gpt-neo")

/// The benchmark text: the files given, or the corpus' English cases.
func loadText() throws -> String {
    let arguments = CommandLine.arguments.dropFirst()
    if !arguments.isEmpty {
        return try arguments.map { try String(contentsOfFile: $0, encoding: .utf8) }.joined(separator: "\n")
    }
    let casesURL = repositoryRoot.appendingPathComponent("Tests/Fixtures/tokenizer/cases.json")
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: casesURL)) as! [String: Any]
    let cases = json["cases"] as! [[String: Any]]
    return cases.filter { ["prose", "real-text"].contains($0["category"] as! String) }
        .map { $0["text"] as! String }.joined(separator: "\n")
}

/// Splits the text at line ends into chunks of about `size` bytes.
func chunks(of text: String, size: Int) -> [String] {
    var result: [String] = []
    var current = ""
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        current += line
        current += "\n"
        if current.utf8.count >= size {
            result.append(current)
            current = ""
        }
    }
    if !current.isEmpty { result.append(current) }
    return result
}

func measure(_ tokenizer: GPT2Tokenizer, _ pieces: [String]) -> (seconds: Double, tokens: Int) {
    let clock = ContinuousClock()
    var tokens = 0
    let elapsed = clock.measure {
        for piece in pieces { tokens += tokenizer.encode(piece).count }
    }
    let (seconds, attoseconds) = elapsed.components
    return (Double(seconds) + Double(attoseconds) * 1e-18, tokens)
}

let text = try loadText()
let pieces = chunks(of: text, size: 4096)
let megabytes = Double(text.utf8.count) / 1_000_000
print(String(format: "text: %.3f MB in %d chunks", megabytes, pieces.count))

let loadStart = ContinuousClock.now
let tokenizer = try GPT2Tokenizer.load(vocabulary: vocabularyDirectory.appendingPathComponent("vocab.json"),
                                       merges: vocabularyDirectory.appendingPathComponent("merges.txt"))
print("load vocab.json + merges.txt: \(ContinuousClock.now - loadStart)")
let fixtureDirectory = repositoryRoot.appendingPathComponent("Tests/Fixtures/tokenizer")
for (name, load) in [
    ("tokenizer.json", { try GPT2Tokenizer.load(tokenizerJSON: fixtureDirectory.appendingPathComponent("tokenizer.json")) }),
    ("gpt2.tiktoken", { try GPT2Tokenizer.load(tiktoken: fixtureDirectory.appendingPathComponent("gpt2.tiktoken")) }),
] as [(String, () throws -> GPT2Tokenizer)] {
    let start = ContinuousClock.now
    _ = try load()
    print("load \(name): \(ContinuousClock.now - start)")
}

let cold = measure(tokenizer, pieces)
print(String(format: "cold (empty cache): %.2f MB/s, %d tokens, %.1f bytes/token",
             megabytes / cold.seconds, cold.tokens, Double(text.utf8.count) / Double(cold.tokens)))
var best = Double.infinity
for _ in 0..<5 { best = min(best, measure(tokenizer, pieces).seconds) }
print(String(format: "warm (best of 5): %.2f MB/s", megabytes / best))
