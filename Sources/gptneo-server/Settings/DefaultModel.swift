import Foundation

// MARK: - The bundled default model

/// Finds the model served when no `--model` is given. For now that is the tiny test checkpoint
/// committed at `Tests/Fixtures/tiny-gpt-neo`, looked up relative to (in order) the source checkout
/// the executable was built from, the working directory, and the executable's own location.
enum DefaultModel {
    static let relativePath = "Tests/Fixtures/tiny-gpt-neo"

    /// The first candidate holding a `config.json`, or nil.
    static func locate(sourceFile: String, workingDirectory: String = FileManager.default.currentDirectoryPath,
                              executable: URL? = Bundle.main.executableURL) -> URL? {
        candidates(sourceFile: sourceFile, workingDirectory: workingDirectory, executable: executable).first {
            FileManager.default.fileExists(atPath: $0.appendingPathComponent("config.json").path)
        }
    }

    static func candidates(sourceFile: String, workingDirectory: String, executable: URL?) -> [URL] {
        var roots: [URL] = []
        // Sources/gptneo-server/main.swift → the checkout's root.
        roots.append(URL(fileURLWithPath: sourceFile).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent())
        roots.append(URL(fileURLWithPath: workingDirectory))
        // .build/<triple>/release/gptneo-server: walk up from the binary.
        if var directory = executable?.resolvingSymlinksInPath().deletingLastPathComponent() {
            for _ in 0..<5 {
                roots.append(directory)
                directory = directory.deletingLastPathComponent()
            }
        }
        return roots.map { $0.appendingPathComponent(relativePath).standardizedFileURL }
    }
}
