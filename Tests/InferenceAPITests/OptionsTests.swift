import XCTest
@testable import InferenceAPI

final class OptionsTests: XCTestCase {
    private func writeConfig(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gptneo-\(UUID().uuidString).conf").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testDefaults() throws {
        let options = try ServerOptions.resolve(configFile: nil, environment: [:], flags: [:])
        XCTAssertEqual(options, ServerOptions())
        XCTAssertNil(options.model)
        XCTAssertEqual(options.host, "127.0.0.1")
        XCTAssertEqual(options.port, 8000)
    }

    func testFlagsWinOverEnvironmentWhichWinsOverTheConfigFile() throws {
        let config = try writeConfig("""
        # comment
        port = 7000
        host = "0.0.0.0"   # trailing comment
        api_keys = a, b
        max_choices = 4
        """)
        let options = try ServerOptions.resolve(configFile: config,
                                                environment: ["GPTNEO_PORT": "7001", "GPTNEO_MODEL": "/m", "GPTNEO_METRICS_REQUIRE_KEY": "yes"],
                                                flags: ["port": "7002"])
        XCTAssertEqual(options.port, 7002)
        XCTAssertEqual(options.host, "0.0.0.0")
        XCTAssertEqual(options.model, "/m")
        XCTAssertEqual(options.apiKeys, ["a", "b"])
        XCTAssertEqual(options.maxChoices, 4)
        XCTAssertTrue(options.metricsRequireKey)
    }

    func testBadValuesAreNamed() throws {
        XCTAssertThrowsError(try ServerOptions.resolve(configFile: nil, environment: ["GPTNEO_PORT": "80000"], flags: [:])) { error in
            XCTAssertEqual("\(error)", "invalid port '80000': expected an integer from 0 to 65535")
        }
        XCTAssertThrowsError(try ServerOptions.resolve(configFile: nil, environment: [:], flags: ["log_level": "loud"]))
        let config = try writeConfig("prot = 1\n")
        XCTAssertThrowsError(try ServerOptions.resolve(configFile: config, environment: [:], flags: [:])) { error in
            XCTAssertTrue("\(error)".contains(":1: unknown key 'prot'"), "\(error)")
        }
        XCTAssertThrowsError(try ServerOptions.resolve(configFile: "/no/such/file", environment: [:], flags: [:]))
    }

    func testDefaultModelIsFoundFromTheSourceCheckout() throws {
        // This file is Tests/InferenceAPITests/OptionsTests.swift: same depth as Sources/gptneo-server/main.swift.
        let found = DefaultModel.locate(sourceFile: #filePath, workingDirectory: "/", executable: nil)
        XCTAssertEqual(found?.lastPathComponent, "gpt-neo-kjv-8m")
        XCTAssertNil(DefaultModel.locate(sourceFile: "/a/b/c.swift", workingDirectory: "/", executable: nil))
    }

    func testDefaultModelIsFoundFromTheWorkingDirectoryAndTheExecutable() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("default-model-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: root) }
        func makeModel(_ relative: String) throws -> URL {
            let directory = root.appendingPathComponent(relative)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try Data("{}".utf8).write(to: directory.appendingPathComponent("config.json"))
            return directory.standardizedFileURL
        }
        let checkout = try makeModel("checkout/" + DefaultModel.relativePath)
        let installed = try makeModel("prefix/" + DefaultModel.installedRelativePath)
        let elsewhere = "/a/b/c.swift"

        XCTAssertEqual(DefaultModel.locate(sourceFile: elsewhere, workingDirectory: root.appendingPathComponent("checkout").path, executable: nil)?.path, checkout.path)
        // A release binary inside the checkout: .build/x86_64-unknown-linux-gnu/release/gptneo-server.
        let built = root.appendingPathComponent("checkout/.build/x86_64-unknown-linux-gnu/release/gptneo-server")
        XCTAssertEqual(DefaultModel.locate(sourceFile: elsewhere, workingDirectory: "/", executable: built)?.path, checkout.path)
        // An installed binary: PREFIX/bin/gptneo-server with the model in PREFIX/share/gptneo-server/.
        let installedBinary = root.appendingPathComponent("prefix/bin/gptneo-server")
        XCTAssertEqual(DefaultModel.locate(sourceFile: elsewhere, workingDirectory: "/", executable: installedBinary)?.path, installed.path)
    }
}
