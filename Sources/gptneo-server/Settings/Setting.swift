import Foundation

// MARK: - One setting

/// One entry of the settings table: where its value may come from (file key, flag, environment
/// variable), what values it allows, and which `ServerOptions` field it sets.
struct Setting {
    /// What a value may be; parsing and the "allowed" part of error messages follow from it.
    enum Kind: Equatable {
        case text
        case path
        case integer(ClosedRange<Int>)
        case seconds(ClosedRange<Double>)
        case boolean
        case choice([String])
        case list

        var allowed: String {
            switch self {
            case .text: "a string"
            case .path: "a file or directory path"
            case .integer(let range): "an integer from \(range.lowerBound) to \(range.upperBound)"
            case .seconds(let range): "a number of seconds from \(formatNumber(range.lowerBound)) to \(formatNumber(range.upperBound))"
            case .boolean: "true or false"
            case .choice(let choices): "one of " + choices.joined(separator: ", ")
            case .list: "a list of strings (in a flag or variable: comma-separated; a flag may repeat)"
            }
        }
    }

    /// The config-file key, `group.name` (YAML: `group:` then `  name: value`).
    let key: String
    /// `--flag`; the environment variable is `GPTNEO_` + the flag in upper case with `_` for `-`.
    let flag: String
    let environment: String
    let kind: Kind
    let help: String
    /// Never printed, never logged.
    let isSecret: Bool
    /// Applied again on SIGHUP and when the config file changes, without a restart.
    let isReloadable: Bool
    /// The field's value in `options` (the default, read from `ServerOptions()`).
    let value: (ServerOptions) -> SettingValue
    let assign: (inout ServerOptions, SettingValue) -> Void

    var group: String { String(key.prefix { $0 != "." }) }
    var name: String { String(key.drop { $0 != "." }.dropFirst()) }
    var defaultValue: SettingValue { value(ServerOptions()) }
    /// Whether YAML `null` (no value) is allowed: for settings whose default is no value.
    var acceptsNull: Bool { kind == .list || defaultValue == .unset }

    static let booleanWords = ["true": true, "yes": true, "on": true, "1": true, "false": false, "no": false, "off": false, "0": false]

    /// Parses one textual value (a flag, a variable, a YAML scalar), or throws naming key, source and what is allowed.
    func parse(_ text: String, source: SettingSource) throws(SettingsError) -> SettingValue {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        func invalid() -> SettingsError {
            .invalidValue(key: key, source: source, value: isSecret ? SettingValue.redacted : text, allowed: kind.allowed)
        }
        switch kind {
        case .text, .path:
            return .text(trimmed)
        case .integer(let range):
            guard let number = Int(trimmed), range.contains(number) else { throw invalid() }
            return .integer(number)
        case .seconds(let range):
            guard let number = Double(trimmed), number.isFinite, range.contains(number) else { throw invalid() }
            return .seconds(number)
        case .boolean:
            guard let flag = Self.booleanWords[trimmed.lowercased()] else { throw invalid() }
            return .boolean(flag)
        case .choice(let choices):
            guard choices.contains(trimmed) else { throw invalid() }
            return .text(trimmed)
        case .list:
            return .list(trimmed.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        }
    }
}

/// A parsed value.
enum SettingValue: Equatable, Sendable {
    case unset
    case text(String)
    case integer(Int)
    case seconds(Double)
    case boolean(Bool)
    case list([String])

    static let redacted = "<redacted>"

    /// As written in the YAML file and printed by `--check-config`.
    var rendered: String {
        switch self {
        case .unset: "null"
        case .text(let text): text
        case .integer(let number): String(number)
        case .seconds(let number): formatNumber(number)
        case .boolean(let flag): flag ? "true" : "false"
        case .list(let items): "[" + items.joined(separator: ", ") + "]"
        }
    }
}

/// Where a value came from, in decreasing precedence.
enum SettingSource: Equatable, Sendable, CustomStringConvertible {
    case flag(String)
    case environment(String)
    case file(String)
    case defaultValue

    var description: String {
        switch self {
        case .flag(let flag): "flag --\(flag)"
        case .environment(let name): "environment \(name)"
        case .file(let path): "file \(path)"
        case .defaultValue: "default"
        }
    }
}

enum SettingsError: Error, Equatable, CustomStringConvertible {
    case invalidValue(key: String, source: SettingSource, value: String, allowed: String)
    case unknownKey(String, source: SettingSource, known: String)
    case unreadableFile(path: String, reason: String)
    case invalidFile(path: String, reason: String)
    case missingFlagValue(String)
    case unknownFlag(String)
    case missingCompanion(key: String, source: SettingSource, companion: String, reason: String)
    case unexpectedArgument(String)

    var description: String {
        switch self {
        case .invalidValue(let key, let source, let value, let allowed):
            "invalid \(key) '\(value)' from \(source): expected \(allowed)"
        case .unknownKey(let key, let source, let known):
            "unknown setting '\(key)' (\(source)); known: \(known)"
        case .unreadableFile(let path, let reason): "cannot read \(path): \(reason)"
        case .invalidFile(let path, let reason): "\(path): \(reason)"
        case .missingFlagValue(let flag): "flag --\(flag) needs a value"
        case .missingCompanion(let key, let source, let companion, let reason):
            "\(key) is set (\(source)) but \(companion) is not: \(reason)"
        case .unknownFlag(let flag): "unknown flag --\(flag) (gptneo-server --help lists them)"
        case .unexpectedArgument(let argument): "unexpected argument '\(argument)': settings are given as --flag VALUE"
        }
    }
}

// MARK: - Building entries

extension Setting {
    private static func environmentName(_ flag: String) -> String {
        "GPTNEO_" + flag.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    private static func make(_ key: String, _ flag: String, environment: String?, _ kind: Kind, secret: Bool = false,
                             reloadable: Bool = false, help: String,
                             value: @escaping (ServerOptions) -> SettingValue,
                             assign: @escaping (inout ServerOptions, SettingValue) -> Void) -> Setting {
        Setting(key: key, flag: flag, environment: environment ?? environmentName(flag), kind: kind, help: help,
                isSecret: secret, isReloadable: reloadable, value: value, assign: assign)
    }

    static func text(_ key: String, flag: String, _ field: WritableKeyPath<ServerOptions, String>, help: String) -> Setting {
        make(key, flag, environment: nil, .text, help: help, value: { .text($0[keyPath: field]) },
             assign: { if case .text(let v) = $1 { $0[keyPath: field] = v } })
    }

    static func optional(_ key: String, flag: String, kind: Kind = .text, _ field: WritableKeyPath<ServerOptions, String?>,
                         reloadable: Bool = false, help: String) -> Setting {
        make(key, flag, environment: nil, kind, reloadable: reloadable, help: help, value: { $0[keyPath: field].map { .text($0) } ?? .unset },
             assign: { options, value in
                 if case .text(let v) = value { options[keyPath: field] = v.isEmpty ? nil : v } else if value == .unset { options[keyPath: field] = nil }
             })
    }

    static func integer(_ key: String, flag: String, _ field: WritableKeyPath<ServerOptions, Int>, _ range: ClosedRange<Int>,
                        help: String) -> Setting {
        make(key, flag, environment: nil, .integer(range), help: help, value: { .integer($0[keyPath: field]) },
             assign: { if case .integer(let v) = $1 { $0[keyPath: field] = v } })
    }

    static func optionalInteger(_ key: String, flag: String, _ field: WritableKeyPath<ServerOptions, Int?>, _ range: ClosedRange<Int>,
                                help: String) -> Setting {
        make(key, flag, environment: nil, .integer(range), help: help, value: { $0[keyPath: field].map { .integer($0) } ?? .unset },
             assign: { options, value in
                 if case .integer(let v) = value { options[keyPath: field] = v } else if value == .unset { options[keyPath: field] = nil }
             })
    }

    static func seconds(_ key: String, flag: String, _ field: WritableKeyPath<ServerOptions, Double>, _ range: ClosedRange<Double>,
                        help: String) -> Setting {
        make(key, flag, environment: nil, .seconds(range), help: help, value: { .seconds($0[keyPath: field]) },
             assign: { if case .seconds(let v) = $1 { $0[keyPath: field] = v } })
    }

    static func boolean(_ key: String, flag: String, _ field: WritableKeyPath<ServerOptions, Bool>, help: String) -> Setting {
        make(key, flag, environment: nil, .boolean, help: help, value: { .boolean($0[keyPath: field]) },
             assign: { if case .boolean(let v) = $1 { $0[keyPath: field] = v } })
    }

    static func choice(_ key: String, flag: String, _ field: WritableKeyPath<ServerOptions, String>, _ choices: [String],
                       reloadable: Bool = false, help: String) -> Setting {
        make(key, flag, environment: nil, .choice(choices), reloadable: reloadable, help: help, value: { .text($0[keyPath: field]) },
             assign: { if case .text(let v) = $1 { $0[keyPath: field] = v } })
    }

    /// A setting whose values are an enumeration's raw values.
    static func choice<Choice: RawRepresentable & CaseIterable>(_ key: String, flag: String, _ field: WritableKeyPath<ServerOptions, Choice>,
                                                                help: String) -> Setting where Choice.RawValue == String {
        make(key, flag, environment: nil, .choice(Choice.allCases.map(\.rawValue)), help: help, value: { .text($0[keyPath: field].rawValue) },
             assign: { options, value in
                 if case .text(let v) = value, let choice = Choice(rawValue: v) { options[keyPath: field] = choice }
             })
    }

    static func list(_ key: String, flag: String, environment: String, _ field: WritableKeyPath<ServerOptions, [String]>,
                     secret: Bool, reloadable: Bool = false, help: String) -> Setting {
        make(key, flag, environment: environment, .list, secret: secret, reloadable: reloadable, help: help, value: { .list($0[keyPath: field]) },
             assign: { options, value in
                 if case .list(let v) = value { options[keyPath: field] = v } else if value == .unset { options[keyPath: field] = [] }
             })
    }
}

/// `2`, `0.5`, `30`: integers without a trailing `.0`.
func formatNumber(_ value: Double) -> String {
    value.rounded() == value && abs(value) < 1e15 ? String(Int(value)) : String(value)
}
