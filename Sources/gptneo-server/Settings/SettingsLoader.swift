import Configuration
import Foundation
import SystemPackage
import Yams

// MARK: - Resolving the settings

/// The effective settings and where each value came from.
struct ResolvedSettings: Sendable {
    var options: ServerOptions
    /// Setting key → the source its value came from.
    var sources: [String: SettingSource]
    var configFile: String?
    /// Problems that do not stop the server (an unknown `GPTNEO_*` variable).
    var warnings: [String]
}

/// Looks every setting up in three swift-configuration providers, in decreasing precedence: the flags
/// (an `InMemoryProvider`), the `GPTNEO_*` environment (`EnvironmentVariablesProvider`) and the YAML
/// config file (`FileProvider<YAMLSnapshot>`); a setting none of them has keeps its default.
enum SettingsLoader {
    static let configFileVariable = "GPTNEO_CONFIG"

    static func resolve(_ commandLine: ParsedCommandLine, environment: [String: String]) async throws(SettingsError) -> ResolvedSettings {
        let table = SettingsTable.all
        var warnings: [String] = []

        var flagValues: [AbsoluteConfigKey: ConfigValue] = [:]
        for (setting, values) in commandLine.values {
            let content: ConfigContent = setting.kind == .list ? .stringArray(values) : .string(values.last ?? "")
            flagValues[configKey(setting)] = ConfigValue(content, isSecret: setting.isSecret)
        }
        let secretVariables = Set(table.filter(\.isSecret).map(\.environment))
        let known = Set(table.map(\.environment) + [configFileVariable])
        // GPTNEO_ variables this process does not read (GPTNEO_TARGET_CPU is read by the build).
        for name in environment.keys.sorted() where name.hasPrefix("GPTNEO_") && !known.contains(name) && name != "GPTNEO_TARGET_CPU" {
            warnings.append("environment variable \(name) is not a setting (known: \(table.map(\.environment).joined(separator: ", ")))")
        }

        var providers: [(provider: any ConfigProvider, source: (Setting) -> SettingSource, key: (Setting) -> AbsoluteConfigKey)] = [
            (InMemoryProvider(name: "flags", values: flagValues), { .flag($0.flag) }, configKey),
            (EnvironmentVariablesProvider(environmentVariables: environment, secretsSpecifier: .specific(secretVariables)),
             { .environment($0.environment) }, { AbsoluteConfigKey([$0.environment]) }),
        ]
        let configFile = commandLine.configFile ?? environment[configFileVariable]
        var nullKeys: Set<String> = []
        if let configFile {
            nullKeys = try validateFile(configFile, table: table)
            do {
                let file = try await FileProvider<YAMLSnapshot>(filePath: FilePath(configFile))
                providers.append((file, { _ in .file(configFile) }, configKey))
            } catch {
                throw .invalidFile(path: configFile, reason: "\(error)")
            }
        }

        var options = ServerOptions()
        var sources: [String: SettingSource] = [:]
        for setting in table {
            sources[setting.key] = .defaultValue
            for (provider, source, key) in providers {
                if source(setting) == .file(configFile ?? ""), nullKeys.contains(setting.key) {
                    setting.assign(&options, .unset)
                    sources[setting.key] = source(setting)
                    break
                }
                guard let texts = try lookup(setting, in: provider, key: key(setting), source: source(setting)) else { continue }
                var value = SettingValue.unset
                for text in texts {
                    let parsed = try setting.parse(text, source: source(setting))
                    // A list's values add up (a repeated flag); any other setting takes the last.
                    if case .list(let earlier) = value, case .list(let more) = parsed { value = .list(earlier + more) } else { value = parsed }
                }
                setting.assign(&options, value)
                sources[setting.key] = source(setting)
                break
            }
        }
        let resolved = ResolvedSettings(options: options, sources: sources, configFile: configFile, warnings: warnings)
        try SettingsTable.validate(resolved)
        return resolved
    }

    private static func configKey(_ setting: Setting) -> AbsoluteConfigKey {
        AbsoluteConfigKey(setting.key.split(separator: ".").map(String.init))
    }

    /// The textual values a provider holds for a setting: one for most, any number for a list.
    private static func lookup(_ setting: Setting, in provider: any ConfigProvider, key: AbsoluteConfigKey,
                               source: SettingSource) throws(SettingsError) -> [String]? {
        do {
            if setting.kind == .list, case .stringArray(let items)? = try? provider.value(forKey: key, type: .stringArray).value?.content {
                return items
            }
            guard case .string(let text)? = try provider.value(forKey: key, type: .string).value?.content else { return nil }
            return [text]
        } catch {
            throw .invalidValue(key: setting.key, source: source, value: "(not a single value)", allowed: setting.kind.allowed)
        }
    }

    /// The file must be a mapping of groups to mappings of known settings; returns the keys set to null
    /// (which mean "the default"). The old `key = value` format gets a message saying what replaced it.
    private static func validateFile(_ path: String, table: [Setting]) throws(SettingsError) -> Set<String> {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .unreadableFile(path: path, reason: (error as NSError).localizedDescription)
        }
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw .invalidFile(path: path, reason: "not valid YAML: \(error)")
        }
        guard let root else { return [] }
        guard let groups = root.mapping else {
            let oldKeys = text.split(whereSeparator: \.isNewline).compactMap { line -> String? in
                guard !line.hasPrefix("#"), let equals = line.firstIndex(of: "=") else { return nil }
                return line[..<equals].trimmingCharacters(in: .whitespaces)
            }
            if !oldKeys.isEmpty {
                let renames = oldKeys.map { old in
                    let setting = table.first { $0.environment == "GPTNEO_" + old.uppercased() }
                    return "\(old) -> \(setting?.key ?? "(no such setting)")"
                }
                throw .invalidFile(path: path, reason: "the 'key = value' format is no longer read; write YAML groups as in config/gptneo-server.yaml (\(renames.joined(separator: ", ")))")
            }
            throw .invalidFile(path: path, reason: "expected a YAML mapping of groups (server, model, batching, auth, logging, shutdown)")
        }
        let source = SettingSource.file(path)
        let knownKeys = table.map(\.key).joined(separator: ", ")
        var nullKeys: Set<String> = []
        for (groupNode, settingsNode) in groups {
            let group = groupNode.string ?? "\(groupNode)"
            guard let settings = settingsNode.mapping else {
                if table.contains(where: { $0.group == group }) {
                    throw .invalidFile(path: path, reason: "'\(group)' must be a mapping of settings (known: \(table.filter { $0.group == group }.map(\.name).joined(separator: ", ")))")
                }
                throw .unknownKey(group, source: source, known: knownKeys)
            }
            for (nameNode, valueNode) in settings {
                let key = group + "." + (nameNode.string ?? "\(nameNode)")
                guard let setting = table.first(where: { $0.key == key }) else { throw .unknownKey(key, source: source, known: knownKeys) }
                if valueNode.tag.description == Tag.Name.null.rawValue {
                    guard setting.acceptsNull else {
                        throw .invalidValue(key: key, source: source, value: "null", allowed: setting.kind.allowed)
                    }
                    nullKeys.insert(key)
                }
                if valueNode.mapping != nil || (valueNode.sequence != nil && setting.kind != .list) {
                    throw .invalidValue(key: key, source: source, value: "(a \(valueNode.mapping != nil ? "mapping" : "list"))", allowed: setting.kind.allowed)
                }
            }
        }
        return nullKeys
    }
}
