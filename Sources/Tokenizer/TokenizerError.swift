import Foundation

/// What can go wrong when loading a tokenizer: every case names the file and what is wrong with it.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    /// The directory holds none of `tokenizer.json`, `vocab.json` + `merges.txt`, `*.tiktoken`, or every one
    /// it holds failed to load (the reasons, in the order tried).
    case noUsableTokenizer(directory: String, reasons: [TokenizerError])
    /// The file could not be read at all.
    case unreadableFile(path: String, reason: String)
    /// The file is not the JSON it should be (or lacks a required field).
    case malformedJSON(path: String, reason: String)
    /// `tokenizer.json` describes something other than a byte-level BPE we can reproduce exactly.
    case unsupportedTokenizer(path: String, reason: String)
    /// A merges line is not `left right`, or names a token that is not in the vocabulary.
    case malformedMerge(path: String, line: Int, reason: String)
    /// A tiktoken line is not `base64 rank`, or the ranks are not usable.
    case malformedRankFile(path: String, line: Int, reason: String)
    /// The vocabulary lacks the single-byte token for this byte, so some text could not be encoded.
    case missingByteToken(path: String, byte: UInt8)
    /// Two tokens claim the same id, or an id is negative.
    case invalidTokenID(path: String, reason: String)

    public var description: String {
        switch self {
        case let .noUsableTokenizer(directory, reasons):
            let detail = reasons.isEmpty
                ? "no tokenizer.json, vocab.json + merges.txt or *.tiktoken file"
                : reasons.map(\.description).joined(separator: "; ")
            return "no usable tokenizer in \(directory): \(detail)"
        case let .unreadableFile(path, reason): return "cannot read \(path): \(reason)"
        case let .malformedJSON(path, reason): return "\(path) is not valid tokenizer JSON: \(reason)"
        case let .unsupportedTokenizer(path, reason): return "\(path): unsupported tokenizer: \(reason)"
        case let .malformedMerge(path, line, reason): return "\(path) line \(line): \(reason)"
        case let .malformedRankFile(path, line, reason): return "\(path) line \(line): \(reason)"
        case let .missingByteToken(path, byte): return "\(path): no token for byte \(byte)"
        case let .invalidTokenID(path, reason): return "\(path): \(reason)"
        }
    }
}

// MARK: - Reading files

/// Reads a whole file, turning Foundation's error into ours.
func readFile(_ url: URL) throws -> Data {
    do {
        return try Data(contentsOf: url)
    } catch {
        throw TokenizerError.unreadableFile(path: url.path, reason: error.localizedDescription)
    }
}

/// The lines of a text file, split at U+000A with one trailing U+000D removed. (Splitting a `String` by the
/// Character "\n" would not split at "\r\n", which Swift treats as a single Character.)
func textLines(_ text: String) -> [String] {
    text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { scalars in
        var line = String.UnicodeScalarView(scalars)
        if line.last == "\r" { line.removeLast() }
        return String(line)
    }
}
