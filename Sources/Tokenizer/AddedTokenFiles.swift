import Foundation

// MARK: - Added tokens beside vocab.json + merges.txt (transformers 4.x tokenizer folders)

/// Fine-tuned checkpoints without `tokenizer.json` keep their added tokens (a pad token appended to the
/// vocabulary, task markers) in side files, read here as transformers' slow GPT2Tokenizer reads them:
/// - `added_tokens.json`: `{content: id}`;
/// - `tokenizer_config.json` `added_tokens_decoder` (transformers ≥ 4.34): `{id: {content, lstrip, rstrip,
///   single_word, normalized, special}}`, which wins for the ids it lists;
/// - `special_tokens_map.json` and `tokenizer_config.json`'s `bos_token`, `eos_token`, `unk_token`, `sep_token`,
///   `pad_token`, `cls_token`, `mask_token` and `additional_special_tokens` (strings or `{"content": ...}`),
///   which make an `added_tokens.json` token special.
enum AddedTokenFiles {
    static let specialTokenKeys = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]

    /// The added tokens the side files in `directory` declare (none when there are no side files).
    static func read(directory: URL) throws -> [AddedToken] {
        let config = try object(directory.appendingPathComponent("tokenizer_config.json"))
        let map = try object(directory.appendingPathComponent("special_tokens_map.json"))
        var specialContents: Set<String> = []
        for source in [config, map].compactMap({ $0 }) {
            for key in specialTokenKeys { if let content = content(source[key]) { specialContents.insert(content) } }
            for item in source["additional_special_tokens"] as? [Any] ?? [] { if let content = content(item) { specialContents.insert(content) } }
        }

        var byID: [Int32: AddedToken] = [:]
        let addedURL = directory.appendingPathComponent("added_tokens.json")
        if let added = try object(addedURL) {
            for (content, value) in added {
                guard let id = (value as? NSNumber).flatMap({ Int32(exactly: $0.doubleValue) }), id >= 0 else {
                    throw TokenizerError.invalidTokenID(path: addedURL.path, reason: "id of added token '\(content)' is not a non-negative integer")
                }
                let special = specialContents.contains(content)
                byID[id] = AddedToken(content: content, id: id, special: special, normalized: !special)
            }
        }
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        for (key, value) in config?["added_tokens_decoder"] as? [String: Any] ?? [:] {
            guard let id = Int32(key), id >= 0, let entry = value as? [String: Any], let content = entry["content"] as? String else {
                throw TokenizerError.malformedJSON(path: configURL.path, reason: "added_tokens_decoder entry \(key) is not {id: {\"content\": ...}}")
            }
            let special = entry["special"] as? Bool ?? specialContents.contains(content)
            byID[id] = AddedToken(content: content, id: id, special: special,
                                  leftStrip: entry["lstrip"] as? Bool ?? false, rightStrip: entry["rstrip"] as? Bool ?? false,
                                  singleWord: entry["single_word"] as? Bool ?? false,
                                  normalized: entry["normalized"] as? Bool ?? !special)
        }
        return byID.keys.sorted().map { byID[$0]! }
    }

    /// The JSON object in `url`, nil when the file does not exist.
    private static func object(_ url: URL) throws -> [String: Any]? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: try readFile(url)) as? [String: Any] else {
            throw TokenizerError.malformedJSON(path: url.path, reason: "not a JSON object")
        }
        return object
    }

    /// A special-token entry: `"<|pad|>"` or `{"content": "<|pad|>", ...}`.
    private static func content(_ value: Any?) -> String? {
        (value as? String) ?? ((value as? [String: Any])?["content"] as? String)
    }
}
