import Foundation
import XCTest
import Yams
@testable import gptneo_server

final class SettingsTests: XCTestCase {
    private func writeFile(_ text: String, name: String = "config.yaml") throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gptneo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func resolve(_ arguments: [String] = [], environment: [String: String] = [:]) async throws -> ResolvedSettings {
        try await SettingsLoader.resolve(try ParsedCommandLine(arguments), environment: environment)
    }

    private func resolveError(_ arguments: [String] = [], environment: [String: String] = [:],
                              file: StaticString = #filePath, line: UInt = #line) async -> String {
        do {
            _ = try await resolve(arguments, environment: environment)
            XCTFail("expected an error", file: file, line: line)
            return ""
        } catch {
            return "\(error)"
        }
    }

    /// A valid value other than the default, as text, for every kind of setting.
    private func sample(_ setting: Setting) -> String {
        switch setting.kind {
        case .text: "example-\(setting.flag)"
        case .path: "/srv/\(setting.flag)"
        case .integer(let range): String(setting.defaultValue == .integer(range.lowerBound) ? range.upperBound : range.lowerBound)
        case .seconds(let range): formatNumber(setting.defaultValue == .seconds(range.upperBound) ? range.lowerBound : range.upperBound)
        case .boolean: setting.defaultValue == .boolean(true) ? "false" : "true"
        case .choice(let choices): choices.first { SettingValue.text($0) != setting.defaultValue }!
        case .list: "first,second"
        }
    }

    private func yaml(_ setting: Setting, _ value: String) -> String {
        "\(setting.group):\n  \(setting.name): \(setting.kind == .list ? "[\(value)]" : "\"\(value)\"")\n"
    }

    /// Settings valid only together (`SettingsTable.validate`): each one's partner.
    static let companions = ["server.tls_cert": "server.tls_key", "server.tls_key": "server.tls_cert"]

    // MARK: Sources and precedence

    func testDefaultsWhenNothingIsGiven() async throws {
        let resolved = try await resolve()
        XCTAssertEqual(resolved.options, ServerOptions())
        XCTAssertTrue(resolved.sources.values.allSatisfy { $0 == .defaultValue })
        XCTAssertEqual(resolved.sources.count, SettingsTable.all.count)
    }

    func testFlagsWinOverEnvironmentWhichWinsOverTheFileWhichWinsOverDefaults() async throws {
        let config = try writeFile("server:\n  port: 7000\n  host: 0.0.0.0\nbatching:\n  max_queued_requests: 9\n  kv_cache_mib: 100\n")
        let resolved = try await resolve(["--config", config, "--port", "7002", "--kv-cache-mib", "300"],
                                         environment: ["GPTNEO_PORT": "7001", "GPTNEO_MAX_QUEUED_REQUESTS": "10", "GPTNEO_KV_CACHE_MIB": "200"])
        XCTAssertEqual(resolved.options.port, 7002)
        XCTAssertEqual(resolved.sources["server.port"], .flag("port"))
        XCTAssertEqual(resolved.options.kvCacheMiB, 300)
        XCTAssertEqual(resolved.options.maxQueuedRequests, 10)
        XCTAssertEqual(resolved.sources["batching.max_queued_requests"], .environment("GPTNEO_MAX_QUEUED_REQUESTS"))
        XCTAssertEqual(resolved.options.host, "0.0.0.0")
        XCTAssertEqual(resolved.sources["server.host"], .file(config))
        XCTAssertEqual(resolved.options.maxRunningSequences, 64)
        XCTAssertEqual(resolved.sources["batching.max_running_sequences"], .defaultValue)
    }

    func testTheConfigFileMayComeFromTheEnvironmentAndTheFlagWins() async throws {
        let fromEnvironment = try writeFile("server:\n  port: 1111\n")
        let fromFlag = try writeFile("server:\n  port: 2222\n")
        let environment = ["GPTNEO_CONFIG": fromEnvironment]
        let viaEnvironment = try await resolve(environment: environment).options.port
        XCTAssertEqual(viaEnvironment, 1111)
        let viaFlag = try await resolve(["--config", fromFlag], environment: environment).options.port
        XCTAssertEqual(viaFlag, 2222)
    }

    /// Every setting reachable from all three sources, each recorded as its source.
    func testEverySettingIsReachableFromAFlagTheEnvironmentAndTheFile() async throws {
        for setting in SettingsTable.all {
            let value = sample(setting)
            let expected = try setting.parse(value, source: .defaultValue)
            XCTAssertNotEqual(expected, setting.defaultValue, setting.key)
            let companion = Self.companions[setting.key].flatMap(SettingsTable.setting(key:))
            let companionValue = companion.map(sample) ?? ""
            let config = try writeFile(yaml(setting, value) + (companion.map { "  \($0.name): \(companionValue)\n" } ?? ""))
            let companionFlags = companion.map { ["--\($0.flag)", companionValue] } ?? []
            let companionEnvironment = companion.map { [$0.environment: companionValue] } ?? [:]
            let cases: [(ResolvedSettings, SettingSource)] = [
                (try await resolve(["--\(setting.flag)", value] + companionFlags), .flag(setting.flag)),
                (try await resolve(["--\(setting.flag)=\(value)"] + companionFlags), .flag(setting.flag)),
                (try await resolve(environment: [setting.environment: value].merging(companionEnvironment) { $1 }), .environment(setting.environment)),
                (try await resolve(["--config", config]), .file(config)),
            ]
            for (resolved, source) in cases {
                XCTAssertEqual(setting.value(resolved.options), expected, "\(setting.key) from \(source)")
                XCTAssertEqual(resolved.sources[setting.key], source, setting.key)
            }
        }
    }

    func testTLSNeedsBothCertificateAndKey() async throws {
        let both = try await resolve(["--tls-cert", "c.pem"], environment: ["GPTNEO_TLS_KEY": "k.pem"]).options
        XCTAssertEqual(both.tlsCert, "c.pem")
        XCTAssertEqual(both.tlsKey, "k.pem")
        let alone = await resolveError(["--tls-cert", "c.pem"])
        XCTAssertEqual(alone, "server.tls_cert is set (flag --tls-cert) but server.tls_key is not: HTTPS needs both")
        let keyAlone = await resolveError(["--config", try writeFile("server:\n  tls_key: k.pem\n")])
        XCTAssertTrue(keyAlone.hasPrefix("server.tls_key is set (file "), keyAlone)
    }

    func testListsRepeatAsFlagsSplitOnCommasAndAreYAMLSequences() async throws {
        let flags = try await resolve(["--api-key", "a", "--api-key", "b,c"]).options.apiKeys
        XCTAssertEqual(flags, ["a", "b", "c"])
        let environment = try await resolve(environment: ["GPTNEO_API_KEYS": " a , b "]).options.apiKeys
        XCTAssertEqual(environment, ["a", "b"])
        let file = try await resolve(["--config", try writeFile("auth:\n  api_keys:\n    - a\n    - b\n")]).options.apiKeys
        XCTAssertEqual(file, ["a", "b"])
        let bare = try await resolve(["--metrics-require-key"]).options.metricsRequireKey
        XCTAssertTrue(bare)
    }

    // MARK: The example file

    /// config/gptneo-server.yaml lists every setting (and nothing else) with the default it claims.
    func testExampleConfigListsEverySettingWithItsTrueDefault() async throws {
        let path = repositoryRoot.appendingPathComponent("config/gptneo-server.yaml").path
        let resolved = try await resolve(["--config", path])
        for setting in SettingsTable.all {
            XCTAssertEqual(resolved.sources[setting.key], .file(path), "\(setting.key) is missing from config/gptneo-server.yaml")
            XCTAssertEqual(setting.value(resolved.options), setting.defaultValue,
                           "\(setting.key): the example says \(setting.value(resolved.options).rendered), the default is \(setting.defaultValue.rendered)")
        }
        let keys = try XCTUnwrap(Yams.compose(yaml: String(contentsOfFile: path, encoding: .utf8))?.mapping).flatMap { group, settings in
            (settings.mapping ?? [:]).map { "\(group.string!).\($0.key.string!)" }
        }
        XCTAssertEqual(keys.sorted(), SettingsTable.all.map(\.key).sorted())
    }

    // MARK: Errors

    func testInvalidValuesNameTheKeyTheSourceAndWhatIsAllowed() async throws {
        let fromEnvironment = await resolveError(environment: ["GPTNEO_PORT": "80000"])
        XCTAssertEqual(fromEnvironment, "invalid server.port '80000' from environment GPTNEO_PORT: expected an integer from 0 to 65535")
        let fromFlag = await resolveError(["--log-level", "loud"])
        XCTAssertEqual(fromFlag, "invalid logging.level 'loud' from flag --log-level: expected one of trace, debug, info, notice, warning, error, critical")
        let config = try writeFile("shutdown:\n  grace_seconds: soon\n")
        let fromFile = await resolveError(["--config", config])
        XCTAssertEqual(fromFile, "invalid shutdown.grace_seconds 'soon' from file \(config): expected a number of seconds from 0 to 3600")
        let boolean = await resolveError(["--metrics-require-key=maybe"])
        XCTAssertEqual(boolean, "invalid auth.metrics_require_key 'maybe' from flag --metrics-require-key: expected true or false")
    }

    func testUnknownNamesAreErrors() async throws {
        let typo = try writeFile("server:\n  prot: 1\n")
        let unknownKey = await resolveError(["--config", typo])
        XCTAssertTrue(unknownKey.hasPrefix("unknown setting 'server.prot' (file \(typo)); known: server.host, server.port,"), unknownKey)
        let unknownGroup = await resolveError(["--config", try writeFile("sever:\n  port: 1\n")])
        XCTAssertTrue(unknownGroup.hasPrefix("unknown setting 'sever.port'"), unknownGroup)
        let notAGroup = await resolveError(["--config", try writeFile("port: 1\n")])
        XCTAssertTrue(notAGroup.hasPrefix("unknown setting 'port'"), notAGroup)
        XCTAssertThrowsError(try ParsedCommandLine(["--prot", "1"])) { XCTAssertEqual("\($0)", "unknown flag --prot (gptneo-server --help lists them)") }
        XCTAssertThrowsError(try ParsedCommandLine(["serve"])) { XCTAssertEqual("\($0)", "unexpected argument 'serve': settings are given as --flag VALUE") }
        XCTAssertThrowsError(try ParsedCommandLine(["--port"])) { XCTAssertEqual("\($0)", "flag --port needs a value") }
        // An unknown GPTNEO_ variable is a warning: the build and the scripts have their own.
        let warned = try await resolve(environment: ["GPTNEO_PROT": "1"]).warnings
        XCTAssertEqual(warned.count, 1)
        XCTAssertTrue(warned[0].hasPrefix("environment variable GPTNEO_PROT is not a setting"), warned[0])
    }

    func testBadFilesAreErrors() async throws {
        let old = try writeFile("# old format\nport = 8080\napi_keys = k1\n", name: "server.conf")
        let oldFormat = await resolveError(["--config", old])
        XCTAssertEqual(oldFormat, "\(old): the 'key = value' format is no longer read; write YAML groups as in config/gptneo-server.yaml (port -> server.port, api_keys -> auth.api_keys)")
        let nullPort = await resolveError(["--config", try writeFile("server:\n  port: null\n")])
        XCTAssertTrue(nullPort.hasPrefix("invalid server.port 'null'"), nullPort)
        let nested = await resolveError(["--config", try writeFile("server:\n  port:\n    number: 1\n")])
        XCTAssertTrue(nested.hasPrefix("invalid server.port '(a mapping)'"), nested)
        let missing = await resolveError(["--config", "/no/such/file.yaml"])
        XCTAssertTrue(missing.hasPrefix("cannot read /no/such/file.yaml"), missing)
        let broken = await resolveError(["--config", try writeFile("server: [\n")])
        XCTAssertTrue(broken.contains("not valid YAML"), broken)
        // null where the default is "none" is fine, and means that.
        let unset = try await resolve(["--config", try writeFile("model:\n  name: null\n")])
        XCTAssertNil(unset.options.modelName)
    }

    // MARK: Help and --check-config

    func testHelpListsEverySettingWithItsFlagVariableKeyAndDefault() {
        let help = HelpText.render()
        for setting in SettingsTable.all {
            XCTAssertTrue(help.contains("  --\(setting.flag)"), setting.flag)
            let defaultText = setting.isSecret ? "none" : setting.defaultValue.rendered
            XCTAssertTrue(help.contains("key \(setting.key), environment \(setting.environment), default \(defaultText)"), setting.key)
        }
    }

    func testCheckConfigPrintsEachValueWithItsSourceAndRedactsSecrets() async throws {
        let resolved = try await resolve(["--port", "9000", "--api-key", "very-secret-key"], environment: ["GPTNEO_HOST": "::1"])
        let report = CheckConfigReport.render(resolved, apiKeysFromFile: nil)
        XCTAssertTrue(report.contains("server.port                          = 9000  (flag --port)"), report)
        XCTAssertTrue(report.contains("server.host                          = ::1  (environment GPTNEO_HOST)"), report)
        XCTAssertTrue(report.contains("batching.kv_cache_mib                = 2048  (default)"), report)
        XCTAssertTrue(report.contains("auth.api_keys                        = [1 x <redacted>]  (flag --api-key)"), report)
        XCTAssertFalse(report.contains("very-secret-key"))
        XCTAssertEqual(report.split(separator: "\n").count, SettingsTable.all.count + 1)

        let missing = try await resolve(["--model", "/no/such/model"])
        XCTAssertTrue(CheckConfigReport.render(missing, apiKeysFromFile: nil).hasSuffix("# warning: model.path /no/such/model does not exist on this machine\n"))
    }

    /// The README's options table has one row per setting, with the table's names and default.
    func testReadmeOptionsTableListsEverySetting() throws {
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let missing = SettingsTable.all.map { setting in
            let defaultText = setting.defaultValue == .unset ? "none" : "`\(setting.defaultValue.rendered)`"
            return "| `\(setting.key)` | `--\(setting.flag)` | `\(setting.environment)` | \(defaultText) | \(setting.help) |"
        }.filter { !readme.contains($0) }
        XCTAssertTrue(missing.isEmpty, "README.md lacks these rows:\n" + missing.joined(separator: "\n"))
    }

    private var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    func testDefaultModelIsFoundFromTheSourceCheckout() throws {
        // This file is Tests/ServerTests/SettingsTests.swift: the same depth as Sources/gptneo-server/ServerCommand.swift.
        let found = DefaultModel.locate(sourceFile: #filePath, workingDirectory: "/", executable: nil)
        XCTAssertEqual(found?.lastPathComponent, URL(fileURLWithPath: DefaultModel.relativePath).lastPathComponent)
        XCTAssertNil(DefaultModel.locate(sourceFile: "/a/b/c.swift", workingDirectory: "/", executable: nil))
    }
}
