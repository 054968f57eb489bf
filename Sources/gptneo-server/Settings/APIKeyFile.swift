import Foundation

// MARK: - API keys from a file or a directory

/// `auth.api_keys_file`: a file with one key per line (`#` comments, blank lines ignored), or a
/// directory whose every visible file holds keys the same way, as Kubernetes mounts a Secret (one
/// file per key, behind `..data` symlinks that the kubelet swaps atomically on rotation).
struct APIKeyFile: Sendable {
    let path: String

    enum ReadError: Error, CustomStringConvertible {
        case unreadable(String, reason: String)
        case empty(String)
        var description: String {
            switch self {
            case .unreadable(let path, let reason): "cannot read API keys from \(path): \(reason)"
            case .empty(let path): "\(path) holds no API keys"
            }
        }
    }

    /// The keys, in a stable order. An empty result is an error: a key file that lost its keys must
    /// not turn authentication off.
    func read() throws(ReadError) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .unreadable(path, reason: "no such file or directory")
        }
        var files = [path]
        if isDirectory.boolValue {
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
                throw .unreadable(path, reason: (error as NSError).localizedDescription)
            }
            files = names.filter { !$0.hasPrefix(".") }.sorted().map { (path as NSString).appendingPathComponent($0) }
                .filter { file in
                    var isSubdirectory: ObjCBool = false
                    return FileManager.default.fileExists(atPath: file, isDirectory: &isSubdirectory) && !isSubdirectory.boolValue
                }
        }
        var keys: [String] = []
        for file in files {
            let text: String
            do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
                throw .unreadable(file, reason: (error as NSError).localizedDescription)
            }
            for line in text.split(whereSeparator: \.isNewline) {
                let key = line.trimmingCharacters(in: .whitespaces)
                if !key.isEmpty && !key.hasPrefix("#") && !keys.contains(key) { keys.append(key) }
            }
        }
        guard !keys.isEmpty else { throw .empty(path) }
        return keys
    }
}

extension ServerOptions {
    /// The keys the server accepts: `auth.api_keys` plus those of `auth.api_keys_file`.
    func effectiveAPIKeys() throws(APIKeyFile.ReadError) -> [String] {
        guard let apiKeysFile else { return apiKeys }
        return apiKeys + (try APIKeyFile(path: apiKeysFile).read()).filter { !apiKeys.contains($0) }
    }
}
