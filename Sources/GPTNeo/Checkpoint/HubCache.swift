import Foundation

// The Hugging Face hub cache as `huggingface_hub` lays it out, read offline:
//
//   <cache>/models--OWNER--NAME/refs/<revision>          a file holding the commit hash
//   <cache>/models--OWNER--NAME/snapshots/<hash>/<file>  symlinks to ../../blobs/<sha256>
//
// <cache> is HF_HUB_CACHE, else HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub (huggingface_hub's constants.py). Symlinks are followed by the ordinary file
// reads; nothing is ever downloaded.

public enum HubCache {
    /// `OWNER/NAME` with huggingface_hub's characters, no `..` or `--`: what `--model` treats as a repo id
    /// when it is not an existing directory.
    public static func isRepoID(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
        return parts.allSatisfy { part in
            !part.isEmpty && part.count <= 96 && part.allSatisfy(allowed.contains)
                && !part.hasPrefix(".") && !part.hasPrefix("-") && !part.contains("..") && !part.contains("--")
        }
    }

    /// The hub cache folder the environment selects.
    public static func cacheDirectory(environment: [String: String]) -> URL {
        func nonEmpty(_ key: String) -> String? { environment[key].flatMap { $0.isEmpty ? nil : $0 } }
        if let hub = nonEmpty("HF_HUB_CACHE") ?? nonEmpty("HUGGINGFACE_HUB_CACHE") { return URL(fileURLWithPath: expand(hub, environment)) }
        if let home = nonEmpty("HF_HOME") { return URL(fileURLWithPath: expand(home, environment)).appendingPathComponent("hub") }
        let cache = nonEmpty("XDG_CACHE_HOME") ?? "~/.cache"
        return URL(fileURLWithPath: expand(cache, environment)).appendingPathComponent("huggingface/hub")
    }

    /// The snapshot folder of `repoID` at `revision` (a branch or tag under refs/, or a commit hash).
    public static func snapshot(repoID: String, revision: String = "main", environment: [String: String]) throws -> URL {
        let cache = cacheDirectory(environment: environment)
        let repository = cache.appendingPathComponent("models--" + repoID.replacingOccurrences(of: "/", with: "--"))
        let revisionParts = revision.split(separator: "/", omittingEmptySubsequences: false)
        guard !revision.isEmpty, !revision.hasPrefix("/"), !revisionParts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw EngineError.modelNotInCache(repoID: repoID, revision: revision, lookedIn: [], reason: "the revision is not a branch, tag or commit name")
        }
        let ref = repository.appendingPathComponent("refs").appendingPathComponent(revision)
        var lookedIn = [ref.path]
        var commit = revision
        if let text = try? String(contentsOf: ref, encoding: .utf8) {
            commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !commit.isEmpty, !commit.contains("/"), commit != ".", commit != ".." else {
                throw EngineError.modelNotInCache(repoID: repoID, revision: revision, lookedIn: lookedIn, reason: "\(ref.path) does not hold a commit hash")
            }
        }
        let snapshot = repository.appendingPathComponent("snapshots").appendingPathComponent(commit)
        lookedIn.append(snapshot.path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: snapshot.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw EngineError.modelNotInCache(repoID: repoID, revision: revision, lookedIn: lookedIn, reason: "not downloaded")
        }
        guard FileManager.default.fileExists(atPath: snapshot.appendingPathComponent("config.json").path) else {
            throw EngineError.modelNotInCache(repoID: repoID, revision: revision, lookedIn: lookedIn,
                                              reason: "the snapshot has no config.json (an interrupted or partial download)")
        }
        return snapshot
    }

    /// `~` at the start means HOME, as Python's expanduser.
    private static func expand(_ path: String, _ environment: [String: String]) -> String {
        guard path == "~" || path.hasPrefix("~/") else { return path }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + path.dropFirst()
    }

    /// The command that downloads `repoID` into the cache.
    public static func downloadCommand(repoID: String, revision: String) -> String {
        "hf download \(repoID)" + (revision == "main" ? "" : " --revision \(revision)")
    }
}
