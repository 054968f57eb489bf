import Foundation

// MARK: - Every option in one place

/// All of the server's settings. They come, in increasing precedence, from the defaults, a config
/// file (`--config`), environment variables (`GPTNEO_*`) and command-line flags. Each setting has one
/// entry in `ServerOptions.settings`, which names its config key and environment variable.
public struct ServerOptions: Sendable, Equatable {
    /// Checkpoint directory, or a Hugging Face repo id (`owner/name`) found in the local hub cache;
    /// nil serves the bundled default model.
    public var model: String?
    /// Branch, tag or commit of a repo id `model` in the hub cache.
    public var revision = "main"
    public var host = "127.0.0.1"
    public var port = 8000
    /// HTTPS: PEM certificate chain (leaf first) and private key; both or neither.
    public var tlsCert: String?
    public var tlsKey: String?
    /// The id `/v1/models` reports and requests may name; default: the checkpoint directory's name.
    public var modelName: String?
    public var apiKeys: [String] = []
    public var metricsRequireKey = false
    public var maxQueuedRequests = 256
    public var maxRunningSequences = 64
    public var kvCacheMiB = 2048
    /// Threads of the engine's parallel loops (and of repacking at load); nil: the CPUs this process
    /// may use (affinity and cgroup quota).
    public var threads: Int?
    public var maxBodyBytes = 1 << 20
    /// Connections served at once; at the limit the longest-idle one makes room, else 503.
    public var maxConnections = 1024
    /// Connections from one client address at once (0: no cap).
    public var maxConnectionsPerClient = 256
    /// HTTP/2 streams open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    public var maxConcurrentStreams = 100
    /// Seconds a new connection may stay silent before it is closed.
    public var firstByteTimeoutSeconds = 5.0
    /// While a response waits on a client, it must accept `minSendBytes` per this many seconds.
    public var sendTimeoutSeconds = 60.0
    public var minSendBytes = 32 * 1024
    public var maxChoices = 16
    /// Largest non-streamed response, estimated before the work (beyond: 400 suggesting `stream`).
    public var maxResponseBytes = 8 << 20
    public var shutdownGraceSeconds = 30
    /// Seconds between SIGTERM and closing the listener, while /readyz already answers 503, so load
    /// balancers see the server leave before connections are refused.
    public var drainDelaySeconds = 2.0
    public var logLevel = "info"
    /// Extra task-head configuration (JSON naming head files; see GPTNeo/HeadsLoading.swift).
    public var heads: String?
    /// How /v1/embeddings pools token states: mean, weightedmean or last.
    public var embeddingPooling = "mean"
    public var normalizeEmbeddings = false

    public init() {}

    /// One setting: its config-file key, its environment variable and how to apply a text value.
    struct Setting: Sendable {
        var key: String
        var apply: @Sendable (inout ServerOptions, String) throws(OptionsError) -> Void
        var environment: String { "GPTNEO_" + key.uppercased() }
    }

    static let settings: [Setting] = [
        Setting(key: "model") { $0.model = $1 },
        Setting(key: "revision") { $0.revision = $1 },
        Setting(key: "host") { $0.host = $1 },
        Setting(key: "port") { o, v throws(OptionsError) in o.port = try parseInt(v, "port", 0...65535) },
        Setting(key: "tls_cert") { $0.tlsCert = $1 },
        Setting(key: "tls_key") { $0.tlsKey = $1 },
        Setting(key: "model_name") { $0.modelName = $1 },
        Setting(key: "api_keys") { o, v in o.apiKeys = v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } },
        Setting(key: "metrics_require_key") { o, v throws(OptionsError) in o.metricsRequireKey = try parseBool(v, "metrics_require_key") },
        Setting(key: "max_queued_requests") { o, v throws(OptionsError) in o.maxQueuedRequests = try parseInt(v, "max_queued_requests", 1...1_000_000) },
        Setting(key: "max_running_sequences") { o, v throws(OptionsError) in o.maxRunningSequences = try parseInt(v, "max_running_sequences", 1...4096) },
        Setting(key: "threads") { o, v throws(OptionsError) in o.threads = try parseInt(v, "threads", 1...1024) },
        Setting(key: "kv_cache_mib") { o, v throws(OptionsError) in o.kvCacheMiB = try parseInt(v, "kv_cache_mib", 1...1_048_576) },
        Setting(key: "max_body_bytes") { o, v throws(OptionsError) in o.maxBodyBytes = try parseInt(v, "max_body_bytes", 1024...(1 << 30)) },
        Setting(key: "max_connections") { o, v throws(OptionsError) in o.maxConnections = try parseInt(v, "max_connections", 1...1_000_000) },
        Setting(key: "max_concurrent_streams") { o, v throws(OptionsError) in
            o.maxConcurrentStreams = try parseInt(v, "max_concurrent_streams", 1...10_000)
        },
        Setting(key: "max_connections_per_client") { o, v throws(OptionsError) in
            o.maxConnectionsPerClient = try parseInt(v, "max_connections_per_client", 0...1_000_000)
        },
        Setting(key: "first_byte_timeout_seconds") { o, v throws(OptionsError) in
            o.firstByteTimeoutSeconds = try parseSeconds(v, "first_byte_timeout_seconds", 0.001...3600)
        },
        Setting(key: "send_timeout_seconds") { o, v throws(OptionsError) in o.sendTimeoutSeconds = try parseSeconds(v, "send_timeout_seconds", 0.001...3600) },
        Setting(key: "min_send_bytes") { o, v throws(OptionsError) in o.minSendBytes = try parseInt(v, "min_send_bytes", 0...(1 << 30)) },
        Setting(key: "max_choices") { o, v throws(OptionsError) in o.maxChoices = try parseInt(v, "max_choices", 1...128) },
        Setting(key: "max_response_bytes") { o, v throws(OptionsError) in o.maxResponseBytes = try parseInt(v, "max_response_bytes", 65536...(1 << 30)) },
        Setting(key: "shutdown_grace_seconds") { o, v throws(OptionsError) in o.shutdownGraceSeconds = try parseInt(v, "shutdown_grace_seconds", 0...3600) },
        Setting(key: "drain_delay_seconds") { o, v throws(OptionsError) in o.drainDelaySeconds = try parseSeconds(v, "drain_delay_seconds", 0...600) },
        Setting(key: "log_level") { o, v throws(OptionsError) in
            guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(v) else {
                throw .invalidValue(setting: "log_level", value: v, expected: "one of trace, debug, info, notice, warning, error, critical")
            }
            o.logLevel = v
        },
        Setting(key: "heads") { $0.heads = $1 },
        Setting(key: "embedding_pooling") { o, v throws(OptionsError) in
            guard ["mean", "weightedmean", "last"].contains(v) else {
                throw .invalidValue(setting: "embedding_pooling", value: v, expected: "one of mean, weightedmean, last")
            }
            o.embeddingPooling = v
        },
        Setting(key: "normalize_embeddings") { o, v throws(OptionsError) in o.normalizeEmbeddings = try parseBool(v, "normalize_embeddings") },
    ]

    /// The environment variables read, for `--help` and the README.
    public static var environmentVariables: [String] { settings.map(\.environment) }

    /// Applies a config file, then the environment, then `flags` (key → value as given on the command line).
    public static func resolve(configFile: String?, environment: [String: String], flags: [String: String]) throws(OptionsError) -> ServerOptions {
        var options = ServerOptions()
        if let configFile {
            let text: String
            do { text = try String(contentsOfFile: configFile, encoding: .utf8) } catch {
                throw .unreadableConfig(path: configFile, reason: (error as NSError).localizedDescription)
            }
            try options.apply(configText: text, path: configFile)
        }
        for setting in settings {
            if let value = environment[setting.environment] { try setting.apply(&options, value) }
        }
        for setting in settings {
            if let value = flags[setting.key] { try setting.apply(&options, value) }
        }
        if (options.tlsCert == nil) != (options.tlsKey == nil) {
            let (given, missing) = options.tlsCert == nil ? ("tls_key", "tls_cert") : ("tls_cert", "tls_key")
            throw .invalidValue(setting: given, value: (options.tlsCert ?? options.tlsKey)!, expected: "\(missing) as well (HTTPS needs both)")
        }
        return options
    }

    /// The config format: `key = value` lines, `#` comments, keys as in `settings` (`port = 8080`,
    /// `api_keys = k1,k2`). Unknown keys are errors, so a typo does not pass silently.
    mutating func apply(configText: String, path: String) throws(OptionsError) {
        for (number, rawLine) in configText.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw .badConfigLine(path: path, line: number + 1, reason: "expected 'key = value'")
            }
            let key = trimmed[..<equals].trimmingCharacters(in: .whitespaces)
            var value = trimmed[trimmed.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            guard let setting = Self.settings.first(where: { $0.key == key }) else {
                throw .badConfigLine(path: path, line: number + 1, reason: "unknown key '\(key)' (known: \(Self.settings.map(\.key).joined(separator: ", ")))")
            }
            try setting.apply(&self, value)
        }
    }

    private static func parseInt(_ text: String, _ name: String, _ range: ClosedRange<Int>) throws(OptionsError) -> Int {
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
            throw .invalidValue(setting: name, value: text, expected: "an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    private static func parseSeconds(_ text: String, _ name: String, _ range: ClosedRange<Double>) throws(OptionsError) -> Double {
        guard let value = Double(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
            let low = range.lowerBound == 0 ? "0" : "\(range.lowerBound)"
            throw .invalidValue(setting: name, value: text, expected: "a number of seconds from \(low) to \(Int(range.upperBound))")
        }
        return value
    }

    private static func parseBool(_ text: String, _ name: String) throws(OptionsError) -> Bool {
        switch text.lowercased() {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off", "": return false
        default: throw .invalidValue(setting: name, value: text, expected: "true or false")
        }
    }
}

public enum OptionsError: Error, Equatable, CustomStringConvertible {
    case invalidValue(setting: String, value: String, expected: String)
    case unreadableConfig(path: String, reason: String)
    case badConfigLine(path: String, line: Int, reason: String)

    public var description: String {
        switch self {
        case .invalidValue(let setting, let value, let expected): "invalid \(setting) '\(value)': expected \(expected)"
        case .unreadableConfig(let path, let reason): "cannot read config file \(path): \(reason)"
        case .badConfigLine(let path, let line, let reason): "\(path):\(line): \(reason)"
        }
    }
}
