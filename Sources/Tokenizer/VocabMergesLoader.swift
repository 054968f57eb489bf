import Foundation

// MARK: - vocab.json + merges.txt (what GPT-2 and EleutherAI's checkpoints ship)

/// What `vocab.json` + `merges.txt` give: each token's bytes -> id, the merges, the id of `<|endoftext|>`.
struct VocabMergesTables: Equatable {
    let idOfBytes: [[UInt8]: Int32]
    let merges: [BytePair: Merge]
    /// The id of the key spelled `<|endoftext|>`, if the vocabulary has it.
    let endOfTextID: Int32?
}

enum VocabMergesLoader {
    /// `vocab.json` maps each token's byte-level spelling to its id; `merges.txt` is an optional
    /// `#version` line, then `left right` per merge in rank order. `<|endoftext|>`, when the vocabulary has
    /// it, is GPT-2's special token (HF makes it bos/eos/unk); `addedTokens` (from the folder's side files)
    /// come on top, and win for the ids they name.
    static func load(vocabulary vocabularyURL: URL, merges mergesURL: URL, addedTokens: [AddedToken] = []) throws -> Vocabulary {
        let vocabularyData = try readFile(vocabularyURL)
        // Unreadable here, it is read again by `parse`, after the vocabulary, so that errors come in that order.
        let mergesData = try? readFile(mergesURL)
        let tables = try mergesData.flatMap { VocabMergesScanner.scan(vocabulary: vocabularyData, merges: $0) }
            ?? parse(vocabulary: vocabularyData, at: vocabularyURL, merges: mergesData, at: mergesURL)
        var added: [AddedToken] = []
        if let id = tables.endOfTextID, !addedTokens.contains(where: { $0.id == id }) {
            added.append(AddedToken(content: "<|endoftext|>", id: id, special: true))
        }
        added += addedTokens
        return try Vocabulary(path: vocabularyURL.path, idOfBytes: tables.idOfBytes, merges: tables.merges, addedTokens: added)
    }

    /// The general reading of the two files (`merges` read from `mergesURL` when nil), which takes any JSON
    /// and gives the errors; `VocabMergesScanner` gives the same tables for the files it accepts.
    static func parse(vocabulary: Data, at vocabularyURL: URL, merges: Data?, at mergesURL: URL) throws -> VocabMergesTables {
        let strings: [String: Int]
        do {
            strings = try JSONDecoder().decode([String: Int].self, from: vocabulary)
        } catch {
            throw TokenizerError.malformedJSON(path: vocabularyURL.path, reason: "expected {\"token\": id, ...}: \(error)")
        }
        let idOfBytes = try bytesToID(strings, path: vocabularyURL.path)
        let pairs = try parseMerges(try merges ?? readFile(mergesURL), path: mergesURL.path)
        return VocabMergesTables(
            idOfBytes: idOfBytes, merges: try Vocabulary.mergeTable(path: mergesURL.path, pairs: pairs, idOfBytes: idOfBytes),
            endOfTextID: strings["<|endoftext|>"].map { Int32($0) })
    }

    /// Byte-level spellings -> bytes, checking ids fit the Int32 the tables use.
    static func bytesToID(_ strings: [String: Int], path: String) throws -> [[UInt8]: Int32] {
        var idOfBytes: [[UInt8]: Int32] = [:]
        idOfBytes.reserveCapacity(strings.count)
        for (string, id) in strings {
            guard id >= 0, id < Int(Int32.max) else {
                throw TokenizerError.invalidTokenID(path: path, reason: "id \(id) of '\(string)' is out of range")
            }
            let bytes = ByteLevelTable.bytes(ofVocabularyString: string)
            if let other = idOfBytes[bytes], other != Int32(id) {
                // Two spellings of the same bytes: keep the lower id, as a BPE result can be only one of them.
                idOfBytes[bytes] = min(other, Int32(id))
            } else {
                idOfBytes[bytes] = Int32(id)
            }
        }
        return idOfBytes
    }

    /// The `left right` pairs of a merges file, with their 1-based line numbers.
    static func parseMerges(_ data: Data, path: String) throws -> [(left: String, right: String, line: Int)] {
        guard var text = String(data: data, encoding: .utf8) else {
            throw TokenizerError.malformedMerge(path: path, line: 1, reason: "the file is not UTF-8")
        }
        if text.unicodeScalars.first == "\u{FEFF}" { text.unicodeScalars.removeFirst() }  // editors' byte order mark
        var pairs: [(left: String, right: String, line: Int)] = []
        pairs.reserveCapacity(50_000)
        var lineNumber = 0
        for line in textLines(text) {
            lineNumber += 1
            if line.isEmpty || (lineNumber == 1 && line.hasPrefix("#version")) { continue }
            let parts = mergeParts(line)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw TokenizerError.malformedMerge(path: path, line: lineNumber, reason: "expected 'left right', got '\(line)'")
            }
            pairs.append((parts[0], parts[1], lineNumber))
        }
        return pairs
    }

    /// A merge line split at U+0020, by scalars: split by Characters, a space followed by a combining mark
    /// would be one Character and not split.
    static func mergeParts(_ line: String) -> [String] {
        line.unicodeScalars.split(separator: " ", omittingEmptySubsequences: false).map { String(String.UnicodeScalarView($0)) }
    }
}
