import Foundation

// MARK: - tokenizer.json (HF `tokenizers` format)

/// The parts of `tokenizer.json` that decide the ids. Unknown fields are ignored; settings that would
/// change the ids in ways this tokenizer does not reproduce are refused rather than silently ignored.
private struct TokenizerFile: Decodable {
    struct Added: Decodable {
        var id: Int
        var content: String
        var special: Bool?
        var lstrip: Bool?
        var rstrip: Bool?
        var single_word: Bool?
        var normalized: Bool?
    }

    /// A pre-tokenizer, normalizer, decoder or post-processor: only its type and byte-level options.
    struct Component: Decodable {
        var type: String
        var add_prefix_space: Bool?
        var use_regex: Bool?
        var trim_offsets: Bool?
        /// The parts of a `Sequence` post-processor.
        var processors: [Component]?
    }

    /// `merges` is `["a b", ...]` in older files and `[["a", "b"], ...]` since tokenizers 0.20.
    enum Merges: Decodable {
        case strings([String])
        case pairs([[String]])

        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let strings = try? container.decode([String].self) {
                self = .strings(strings)
            } else {
                self = .pairs(try container.decode([[String]].self))
            }
        }
    }

    struct Model: Decodable {
        var type: String?
        var vocab: [String: Int]
        var merges: Merges
        var dropout: Double?
        var continuing_subword_prefix: String?
        var end_of_word_suffix: String?
        var byte_fallback: Bool?
        var ignore_merges: Bool?
    }

    var added_tokens: [Added]?
    var normalizer: Component?
    var pre_tokenizer: Component?
    var decoder: Component?
    var post_processor: Component?
    var model: Model
}

enum TokenizerJSONLoader {
    static func load(_ url: URL) throws -> Vocabulary {
        let path = url.path
        let file: TokenizerFile
        do {
            file = try JSONDecoder().decode(TokenizerFile.self, from: try readFile(url))
        } catch let error as TokenizerError {
            throw error
        } catch {
            throw TokenizerError.malformedJSON(path: path, reason: "\(error)")
        }
        try checkSupported(file, path: path)

        let idOfBytes = try VocabMergesLoader.bytesToID(file.model.vocab, path: path)
        var pairs: [(left: String, right: String, line: Int)] = []
        switch file.model.merges {
        case .strings(let lines):
            for (index, line) in lines.enumerated() {
                let parts = VocabMergesLoader.mergeParts(line)
                guard parts.count == 2 else {
                    throw TokenizerError.malformedMerge(path: path, line: index + 1, reason: "expected 'left right', got '\(line)'")
                }
                pairs.append((parts[0], parts[1], index + 1))
            }
        case .pairs(let lists):
            for (index, list) in lists.enumerated() {
                guard list.count == 2 else {
                    throw TokenizerError.malformedMerge(path: path, line: index + 1, reason: "expected a pair, got \(list)")
                }
                pairs.append((list[0], list[1], index + 1))
            }
        }
        let merges = try Vocabulary.mergeTable(path: path, pairs: pairs, idOfBytes: idOfBytes)
        let added = (file.added_tokens ?? []).map { token in
            AddedToken(content: token.content, id: Int32(clamping: token.id), special: token.special ?? false,
                       leftStrip: token.lstrip ?? false, rightStrip: token.rstrip ?? false,
                       singleWord: token.single_word ?? false,
                       // HF's default: special tokens are not normalized, the others are.
                       normalized: token.normalized ?? !(token.special ?? false))
        }
        return try Vocabulary(path: path, idOfBytes: idOfBytes, merges: merges, addedTokens: added,
                              ignoreMerges: file.model.ignore_merges ?? false,
                              offsetTrimming: offsetTrimming(file.post_processor))
    }

    /// A ByteLevel post-processor with `trim_offsets` (alone or inside a `Sequence`) moves token offsets
    /// off leading and trailing spaces. GPT-2's own files say `trim_offsets: false` or use a template.
    private static func offsetTrimming(_ processor: TokenizerFile.Component?) -> OffsetTrimming? {
        guard let processor else { return nil }
        if processor.type == "Sequence" {
            return (processor.processors ?? []).lazy.compactMap(offsetTrimming).first
        }
        guard processor.type == "ByteLevel", processor.trim_offsets == true else { return nil }
        return OffsetTrimming(addPrefixSpace: processor.add_prefix_space ?? true)
    }

    private static func checkSupported(_ file: TokenizerFile, path: String) throws {
        func refuse(_ reason: String) -> TokenizerError { .unsupportedTokenizer(path: path, reason: reason) }
        if let type = file.model.type, type != "BPE" { throw refuse("model type \(type), expected BPE") }
        if let normalizer = file.normalizer { throw refuse("normalizer \(normalizer.type) (GPT-2 has none)") }
        guard let preTokenizer = file.pre_tokenizer, preTokenizer.type == "ByteLevel" else {
            throw refuse("pre-tokenizer \(file.pre_tokenizer?.type ?? "none"), expected ByteLevel")
        }
        if preTokenizer.add_prefix_space == true { throw refuse("ByteLevel add_prefix_space = true") }
        if preTokenizer.use_regex == false { throw refuse("ByteLevel use_regex = false") }
        if let decoder = file.decoder, decoder.type != "ByteLevel" { throw refuse("decoder \(decoder.type), expected ByteLevel") }
        if let dropout = file.model.dropout, dropout != 0 { throw refuse("BPE dropout \(dropout)") }
        if let prefix = file.model.continuing_subword_prefix, !prefix.isEmpty { throw refuse("continuing_subword_prefix") }
        if let suffix = file.model.end_of_word_suffix, !suffix.isEmpty { throw refuse("end_of_word_suffix") }
        if file.model.byte_fallback == true { throw refuse("byte_fallback") }
    }
}
