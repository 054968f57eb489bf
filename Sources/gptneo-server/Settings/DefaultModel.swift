import Foundation

// MARK: - The bundled default model

/// Finds the model served when no `--model` is given: the small GPT-Neo trained on the King James
/// Bible that the repository ships in `models/gpt-neo-kjv-8m` (see its model card). It is looked up,
/// in order, under the source checkout the executable was built from, the working directory, the
/// executable's own folder and its ancestors (a binary in `.build/<triple>/release/` of a checkout,
/// or beside a copied `models/` folder), and `share/gptneo-server/` beside the executable's `bin/`
/// (an installed layout such as `/usr/local/bin` + `/usr/local/share/gptneo-server/models/...`).
enum DefaultModel {
    static let relativePath = "models/gpt-neo-kjv-8m"
    /// Where an installation keeps the model, relative to the prefix that holds `bin/gptneo-server`.
    static let installedRelativePath = "share/gptneo-server/" + relativePath

    /// The first candidate holding a `config.json`, or nil.
    static func locate(sourceFile: String, workingDirectory: String = FileManager.default.currentDirectoryPath,
                              executable: URL? = Bundle.main.executableURL) -> URL? {
        candidates(sourceFile: sourceFile, workingDirectory: workingDirectory, executable: executable).first {
            FileManager.default.fileExists(atPath: $0.appendingPathComponent("config.json").path)
        }
    }

    static func candidates(sourceFile: String, workingDirectory: String, executable: URL?) -> [URL] {
        var candidates: [URL] = []
        // Sources/gptneo-server/main.swift → the checkout's root.
        let checkout = URL(fileURLWithPath: sourceFile).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(checkout.appendingPathComponent(relativePath))
        candidates.append(URL(fileURLWithPath: workingDirectory).appendingPathComponent(relativePath))
        if let binDirectory = executable?.resolvingSymlinksInPath().deletingLastPathComponent() {
            // .build/<triple>/release/gptneo-server: walk up from the binary.
            var directory = binDirectory
            for _ in 0..<5 {
                candidates.append(directory.appendingPathComponent(relativePath))
                directory = directory.deletingLastPathComponent()
            }
            candidates.append(binDirectory.deletingLastPathComponent().appendingPathComponent(installedRelativePath))
        }
        return candidates.map(\.standardizedFileURL)
    }
}
