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
        max_response_bytes = 100000
        """)
        let options = try ServerOptions.resolve(configFile: config,
                                                environment: ["GPTNEO_PORT": "7001", "GPTNEO_MODEL": "/m", "GPTNEO_METRICS_REQUIRE_KEY": "yes"],
                                                flags: ["port": "7002"])
        XCTAssertEqual(options.port, 7002)
        XCTAssertEqual(options.host, "0.0.0.0")
        XCTAssertEqual(options.model, "/m")
        XCTAssertEqual(options.apiKeys, ["a", "b"])
        XCTAssertEqual(options.maxChoices, 4)
        XCTAssertEqual(options.maxResponseBytes, 100000)
        XCTAssertNil(options.threads, "default: the available CPUs, decided by the engine")
        XCTAssertEqual(try ServerOptions.resolve(configFile: config, environment: ["GPTNEO_THREADS": "3"], flags: [:]).threads, 3)
        XCTAssertTrue(options.metricsRequireKey)
    }

    func testBadValuesAreNamed() throws {
        XCTAssertThrowsError(try ServerOptions.resolve(configFile: nil, environment: ["GPTNEO_PORT": "80000"], flags: [:])) { error in
            XCTAssertEqual("\(error)", "invalid port '80000': expected an integer from 0 to 65535")
        }
        XCTAssertThrowsError(try ServerOptions.resolve(configFile: nil, environment: [:], flags: ["log_level": "loud"]))
        XCTAssertThrowsError(try ServerOptions.resolve(configFile: nil, environment: ["GPTNEO_THREADS": "0"], flags: [:])) { error in
            XCTAssertEqual("\(error)", "invalid threads '0': expected an integer from 1 to 1024")
        }
        let config = try writeConfig("prot = 1\n")
        XCTAssertThrowsError(try ServerOptions.resolve(configFile: config, environment: [:], flags: [:])) { error in
            XCTAssertTrue("\(error)".contains(":1: unknown key 'prot'"), "\(error)")
        }
        XCTAssertThrowsError(try ServerOptions.resolve(configFile: "/no/such/file", environment: [:], flags: [:]))
    }

    func testConnectionLimitsAreSettings() throws {
        let config = try writeConfig("max_connections = 2000\nfirst_byte_timeout_seconds = 2.5\n")
        let options = try ServerOptions.resolve(configFile: config,
                                                environment: ["GPTNEO_MAX_CONNECTIONS_PER_CLIENT": "0", "GPTNEO_MIN_SEND_BYTES": "4096"],
                                                flags: ["send_timeout_seconds": "30", "max_concurrent_streams": "250"])
        XCTAssertEqual(options.maxConnections, 2000)
        XCTAssertEqual(options.maxConnectionsPerClient, 0)
        XCTAssertEqual(options.firstByteTimeoutSeconds, 2.5)
        XCTAssertEqual(options.sendTimeoutSeconds, 30)
        XCTAssertEqual(options.minSendBytes, 4096)
        XCTAssertEqual(options.maxConcurrentStreams, 250)
        XCTAssertThrowsError(try ServerOptions.resolve(configFile: nil, environment: [:], flags: ["first_byte_timeout_seconds": "0"])) { error in
            XCTAssertEqual("\(error)", "invalid first_byte_timeout_seconds '0': expected a number of seconds from 0.001 to 3600")
        }
        XCTAssertThrowsError(try ServerOptions.resolve(configFile: nil, environment: [:], flags: ["max_connections": "0"]))
    }

    func testTLSNeedsBothCertificateAndKey() throws {
        let both = try ServerOptions.resolve(configFile: nil, environment: ["GPTNEO_TLS_KEY": "k.pem"], flags: ["tls_cert": "c.pem"])
        XCTAssertEqual(both.tlsCert, "c.pem")
        XCTAssertEqual(both.tlsKey, "k.pem")
        XCTAssertThrowsError(try ServerOptions.resolve(configFile: nil, environment: [:], flags: ["tls_cert": "c.pem"])) { error in
            XCTAssertEqual("\(error)", "invalid tls_cert 'c.pem': expected tls_key as well (HTTPS needs both)")
        }
    }

    func testDefaultModelIsFoundFromTheSourceCheckout() throws {
        // This file is Tests/InferenceAPITests/OptionsTests.swift: same depth as Sources/gptneo-server/main.swift.
        let found = DefaultModel.locate(sourceFile: #filePath, workingDirectory: "/", executable: nil)
        XCTAssertEqual(found?.lastPathComponent, "tiny-gpt-neo")
        XCTAssertNil(DefaultModel.locate(sourceFile: "/a/b/c.swift", workingDirectory: "/", executable: nil))
    }
}
