import Foundation

// MARK: - tiktoken rank files (`base64(bytes) rank` per line)

enum TiktokenLoader {
    /// The ranks are the ids. The merges are derived: the token of rank r is made by the merge of the two
    /// parts BPE leaves on its bytes when only lower ranks exist (that is how GPT-2's merges list relates to
    /// its ids). A rank file carries no special tokens; `<|endoftext|>` is added after the last rank, as
    /// tiktoken's `gpt2` encoding does (50256 for GPT-2).
    static func load(_ url: URL) throws -> Vocabulary {
        let path = url.path
        let data = try readFile(url)
        guard let text = String(data: data, encoding: .utf8) else {
            throw TokenizerError.malformedRankFile(path: path, line: 1, reason: "the file is not UTF-8")
        }
        var idOfBytes: [[UInt8]: Int32] = [:]
        var tokens: [(bytes: [UInt8], rank: Int32)] = []
        var lineNumber = 0
        for line in textLines(text) {
            lineNumber += 1
            let fields = line.split(separator: " ")
            if fields.isEmpty { continue }
            guard fields.count == 2, let decoded = Data(base64Encoded: String(fields[0])),
                  let rank = Int32(fields[1].trimmingCharacters(in: .whitespaces)), rank >= 0, rank < Int32.max - 1
            else {
                throw TokenizerError.malformedRankFile(path: path, line: lineNumber, reason: "expected 'base64 rank', got '\(line)'")
            }
            let bytes = [UInt8](decoded)
            guard !bytes.isEmpty, idOfBytes[bytes] == nil else {
                throw TokenizerError.malformedRankFile(path: path, line: lineNumber, reason: "empty or repeated token")
            }
            idOfBytes[bytes] = rank
            tokens.append((bytes, rank))
        }
        guard !tokens.isEmpty else {
            throw TokenizerError.malformedRankFile(path: path, line: 1, reason: "no ranks")
        }
        for byte in 0..<256 where idOfBytes[[UInt8(byte)]] == nil {
            throw TokenizerError.missingByteToken(path: path, byte: UInt8(byte))
        }
        let merges = try deriveMerges(tokens: tokens, idOfBytes: idOfBytes, path: path)
        var added: [AddedToken] = []
        let endOfText = "<|endoftext|>"
        if idOfBytes[Array(endOfText.utf8)] == nil {
            let nextID = (tokens.map(\.rank).max() ?? -1) + 1
            added.append(AddedToken(content: endOfText, id: nextID, special: true))
        }
        return try Vocabulary(path: path, idOfBytes: idOfBytes, merges: merges, addedTokens: added)
    }

    private static func deriveMerges(
        tokens: [(bytes: [UInt8], rank: Int32)], idOfBytes: [[UInt8]: Int32], path: String
    ) throws -> [BytePair: Merge] {
        var merges: [BytePair: Merge] = [:]
        merges.reserveCapacity(tokens.count)
        for token in tokens.sorted(by: { $0.rank < $1.rank }) where token.bytes.count > 1 {
            let byteIDs = token.bytes.map { idOfBytes[[$0]]! }
            let parts = BytePairEncoder.encode(byteIDs, merges: merges)
            guard parts.count == 2 else {
                throw TokenizerError.malformedRankFile(
                    path: path, line: Int(token.rank) + 1,
                    reason: "token of rank \(token.rank) is not the merge of two lower-ranked tokens")
            }
            merges[BytePair(left: parts[0], right: parts[1])] = Merge(rank: token.rank, result: token.rank)
        }
        return merges
    }
}
