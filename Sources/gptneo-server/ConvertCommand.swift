import ArgumentParser
import Foundation
import GPTNeo

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - gptneo-server convert

/// `gptneo-server convert SRC DST [--dtype float32|float16|bfloat16]`: writes any readable checkpoint
/// (safetensors or pytorch_model.bin, single or sharded, or a repo id in the Hugging Face cache) as
/// safetensors, so later starts map it in well under a second.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a checkpoint (pytorch_model.bin or safetensors, any dtype, sharded or not) to safetensors.",
        discussion: "Writes DST with model.safetensors (or shards and an index past --max-shard-mb), config.json, "
            + "generation_config.json and the tokenizer files. DST must not exist. SRC may be a repo id OWNER/NAME "
            + "in the Hugging Face cache.")

    enum OutputDType: String, ExpressibleByArgument, CaseIterable {
        case float32, float16, bfloat16
        var tensorDType: TensorDType { self == .float32 ? .f32 : self == .float16 ? .f16 : .bf16 }
    }

    @Argument(help: "Checkpoint directory, or OWNER/NAME in the Hugging Face cache.")
    var source: String
    @Argument(help: "Directory to create.")
    var destination: String
    @Option(help: "Element type written: float32, float16 or bfloat16 (default float32).")
    var dtype: OutputDType = .float32
    @Option(help: "Largest shard in MB (10^6 bytes) before the weights are split (default 5000, as transformers).")
    var maxShardMb: Int = CheckpointConverter.defaultMaxShardBytes / 1_000_000
    @Option(help: "Branch, tag or commit when SRC is a repo id (default main).")
    var revision: String = "main"

    func validate() throws {
        guard maxShardMb > 0 else { throw ValidationError("--max-shard-mb must be positive") }
    }

    func run() throws {
        do {
            var isDirectory: ObjCBool = false
            let sourceURL: URL
            if FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory), isDirectory.boolValue {
                sourceURL = URL(fileURLWithPath: source)
            } else if HubCache.isRepoID(source) {
                sourceURL = try HubCache.snapshot(repoID: source, revision: revision, environment: ProcessInfo.processInfo.environment)
            } else {
                throw EngineError.fileMissing(path: source)
            }
            let bar = ProgressBar(enabled: isatty(STDERR_FILENO) == 1)
            let started = Date()
            let summary = try CheckpointConverter.convert(from: sourceURL, to: URL(fileURLWithPath: destination), dtype: dtype.tensorDType,
                                                          maxShardBytes: maxShardMb * 1_000_000, progress: bar.update)
            bar.finish()
            let seconds = String(format: "%.1f", Date().timeIntervalSince(started))
            print("wrote \(summary.tensors) tensors (\(summary.bytes / 1_000_000) MB, \(dtype.rawValue)) to \(destination) "
                  + "in \(summary.shards.count) file(s) in \(seconds) s"
                  + (summary.skipped.isEmpty ? "" : "; left out \(summary.skipped.count) (tied lm_head, mask buffers)"))
        } catch {
            FileHandle.standardError.write(Data("gptneo-server convert: error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// A one-line progress bar on stderr, drawn only on a terminal (logs and pipes stay clean).
final class ProgressBar {
    let enabled: Bool
    private var lastPercent = -1
    init(enabled: Bool) { self.enabled = enabled }

    func update(_ done: Int, _ total: Int) {
        guard enabled, total > 0 else { return }
        let percent = min(100, done * 100 / total)
        guard percent != lastPercent else { return }
        lastPercent = percent
        let width = 40, filled = percent * width / 100
        let line = "\r[" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
            + "] \(percent)% \(done / 1_000_000)/\(total / 1_000_000) MB"
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() { if enabled && lastPercent >= 0 { FileHandle.standardError.write(Data("\n".utf8)) } }
}
