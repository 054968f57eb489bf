import Foundation

// MARK: - Flags

/// The command line: what to do, and the values of the settings' flags.
struct ParsedCommandLine {
    enum Action: Equatable { case serve, checkConfig, help }
    var action: Action = .serve
    var configFile: String?
    /// Each setting given on the command line, with its values in order (a list flag may repeat).
    var values: [(Setting, [String])] = []

    /// `--flag VALUE`, `--flag=VALUE`, or `--flag` alone for a true/false setting; `--config FILE`,
    /// `--check-config`, `--help`. Unknown flags and stray words are errors.
    init(_ arguments: [String]) throws(SettingsError) {
        let table = SettingsTable.all
        var index = 0
        func nextValue(for flag: String, inline: String?) throws(SettingsError) -> String {
            if let inline { return inline }
            index += 1
            guard index < arguments.count else { throw .missingFlagValue(flag) }
            return arguments[index]
        }
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "-h" { action = .help; index += 1; continue }
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw .unexpectedArgument(argument)
            }
            let body = argument.dropFirst(2)
            let flag = String(body.prefix { $0 != "=" })
            let inline = body.contains("=") ? String(body.drop { $0 != "=" }.dropFirst()) : nil
            switch flag {
            case "help": action = .help
            case "check-config": action = .checkConfig
            case "config": configFile = try nextValue(for: flag, inline: inline)
            default:
                guard let setting = table.first(where: { $0.flag == flag }) else {
                    throw .unknownFlag(flag)
                }
                let value: String
                if setting.kind == .boolean && inline == nil {
                    // `--flag` alone is true; `--flag false` also reads.
                    let next = index + 1 < arguments.count ? arguments[index + 1].lowercased() : ""
                    if Setting.booleanWords[next] != nil { index += 1; value = next } else { value = "true" }
                } else {
                    value = try nextValue(for: flag, inline: inline)
                }
                if let at = values.firstIndex(where: { $0.0.key == setting.key }) {
                    values[at].1.append(value)
                } else {
                    values.append((setting, [value]))
                }
            }
            index += 1
        }
    }
}

// MARK: - Help

enum HelpText {
    static func render() -> String {
        var out = """
        gptneo-server: serve a GPT-Neo checkpoint over an OpenAI-compatible HTTP API.

        USAGE: gptneo-server [--config FILE] [--check-config] [--SETTING VALUE ...]
               gptneo-server convert SRC DST [--dtype float32|float16|bfloat16]   (convert --help for more)

        Every setting comes from, in decreasing precedence: a flag, an environment variable, the YAML
        config file (--config FILE or GPTNEO_CONFIG; config/gptneo-server.yaml lists every key), its default.

          --config FILE      YAML config file (environment: GPTNEO_CONFIG)
          --check-config     validate the settings, print each value with its source, exit (no model is loaded)
          --help             this text

        SIGTERM/SIGINT drain and exit 0. SIGHUP, and any change of the config file or the API key file, re-read\nlogging.level and the API keys without a restart.

        """
        var group = ""
        for setting in SettingsTable.all {
            if setting.group != group {
                group = setting.group
                out += "\n\(group.uppercased())\n"
            }
            let value = setting.kind == .boolean ? "" : " \(valueName(setting.kind))"
            let defaultText = setting.isSecret ? "none" : setting.defaultValue.rendered
            out += "  --\(setting.flag)\(value)\n"
            out += "      \(setting.help)\n"
            out += "      key \(setting.key), environment \(setting.environment), default \(defaultText)"
            out += setting.kind.isFreeForm ? "\n" : "; \(setting.kind.allowed)\n"
        }
        return out
    }

    private static func valueName(_ kind: Setting.Kind) -> String {
        switch kind {
        case .text, .choice: "TEXT"
        case .path: "PATH"
        case .integer: "N"
        case .seconds: "SECONDS"
        case .boolean: ""
        case .list: "VALUE"
        }
    }
}

extension Setting.Kind {
    var isFreeForm: Bool {
        switch self {
        case .text, .path, .list: true
        default: false
        }
    }
}

// MARK: - --check-config

enum CheckConfigReport {
    /// One line per setting: `key = value  (source)`, secrets redacted; then the API keys found in
    /// the key file, counted, never shown.
    static func render(_ resolved: ResolvedSettings, apiKeysFromFile: Int?) -> String {
        var out = "# effective configuration" + (resolved.configFile.map { " (config file \($0))" } ?? "") + "\n"
        let table = SettingsTable.all
        let width = table.map(\.key.count).max() ?? 0
        for setting in table {
            let value = setting.value(resolved.options)
            var shown = value.rendered
            if setting.isSecret, case .list(let items) = value { shown = items.isEmpty ? "[]" : "[\(items.count) x \(SettingValue.redacted)]" }
            let source = resolved.sources[setting.key] ?? .defaultValue
            out += setting.key.padding(toLength: width, withPad: " ", startingAt: 0) + " = \(shown)  (\(source))\n"
        }
        if let apiKeysFromFile { out += "# auth.api_keys_file holds \(apiKeysFromFile) key(s)\n" }
        for setting in table where setting.kind == .path {
            if case .text(let path) = setting.value(resolved.options), !FileManager.default.fileExists(atPath: path) {
                out += "# warning: \(setting.key) \(path) does not exist on this machine\n"
            }
        }
        for warning in resolved.warnings { out += "# warning: \(warning)\n" }
        return out
    }
}
