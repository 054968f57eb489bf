import ArgumentParser
import Foundation
import InferenceAPI

// MARK: - Command line

/// `gptneo-server --model DIR [--host H] [--port P] [--config FILE] ...`. Every flag has a
/// `GPTNEO_*` environment variable and a config-file key; flags win over the environment, which wins
/// over the config file (see `ServerOptions`).
@main
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gptneo-server",
        abstract: "Serve a GPT-Neo checkpoint over an OpenAI-compatible HTTP API.",
        discussion: """
        Without --model, serves the bundled default model (\(DefaultModel.relativePath)).

        Environment variables (flags win over them): \(ServerOptions.environmentVariables.joined(separator: ", ")).
        GPTNEO_API_KEYS is a comma-separated list.

        Config file (--config FILE or GPTNEO_CONFIG): lines of 'key = value' with the same names in lower case without \
        the GPTNEO_ prefix (for example 'port = 8080', 'api_keys = k1,k2'); '#' starts a comment. \
        The environment and flags win over it.
        """,
        subcommands: [ConvertCommand.self])

    @Option(help: ArgumentHelp("Hugging Face GPT-Neo checkpoint directory (config.json, safetensors or pytorch_model.bin weights, tokenizer files), or a repo id OWNER/NAME already in the Hugging Face cache.", valueName: "dir|owner/name"))
    var model: String?
    @Option(help: ArgumentHelp("Branch, tag or commit of a repo id --model in the Hugging Face cache (default main).", valueName: "revision"))
    var revision: String?
    @Option(help: ArgumentHelp("Address to listen on (default 127.0.0.1).", valueName: "address"))
    var host: String?
    @Option(help: ArgumentHelp("TCP port (default 8000; 0 picks a free one).", valueName: "port"))
    var port: String?
    @Option(help: ArgumentHelp("Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key. SIGHUP re-reads both.", valueName: "file"))
    var tlsCert: String?
    @Option(help: ArgumentHelp("PEM private key of --tls-cert.", valueName: "file"))
    var tlsKey: String?
    @Option(help: ArgumentHelp("Config file of 'key = value' lines.", valueName: "file"))
    var config: String?
    @Option(help: ArgumentHelp("Model id reported by /v1/models (default: the checkpoint directory's name).", valueName: "id"))
    var modelName: String?
    @Option(help: ArgumentHelp("An accepted API key (repeatable). With any key set, /v1/* needs 'Authorization: Bearer KEY'.", valueName: "key"))
    var apiKey: [String] = []
    @Flag(help: "Require an API key for /metrics too.")
    var metricsRequireKey = false
    @Option(help: ArgumentHelp("Requests that may wait for the batch before new ones get 429 (default 256).", valueName: "n"))
    var maxQueuedRequests: String?
    @Option(help: ArgumentHelp("Most sequences decoded together (default 64).", valueName: "n"))
    var maxRunningSequences: String?
    @Option(help: ArgumentHelp("Threads for the forward pass (default: the CPUs this process may use, from its affinity and cgroup CPU quota).", valueName: "n"))
    var threads: String?
    @Option(help: ArgumentHelp("KV cache budget in MiB (default 2048).", valueName: "mib"))
    var kvCacheMib: String?
    @Option(help: ArgumentHelp("Largest request body in bytes (default 1048576); larger ones get 413.", valueName: "bytes"))
    var maxBodyBytes: String?
    @Option(help: ArgumentHelp("Connections served at once (default 1024); at the limit the longest-idle one is closed to make room, else 503.", valueName: "n"))
    var maxConnections: String?
    @Option(help: ArgumentHelp("Connections from one client address at once (default 256; 0: no cap, e.g. behind a proxy).", valueName: "n"))
    var maxConnectionsPerClient: String?
    @Option(help: ArgumentHelp("HTTP/2 streams open at once on one connection (default 100).", valueName: "n"))
    var maxConcurrentStreams: String?
    @Option(help: ArgumentHelp("Seconds a new connection may stay silent before it is closed (default 5).", valueName: "seconds"))
    var firstByteTimeoutSeconds: String?
    @Option(help: ArgumentHelp("Window of the minimum send rate: a client must accept --min-send-bytes per this many seconds while a response waits (default 60).", valueName: "seconds"))
    var sendTimeoutSeconds: String?
    @Option(help: ArgumentHelp("Bytes a client must accept per --send-timeout-seconds while a response waits for it, else it is cut (default 32768).", valueName: "bytes"))
    var minSendBytes: String?
    @Option(help: ArgumentHelp("Largest n / best_of per prompt (default 16).", valueName: "n"))
    var maxChoices: String?
    @Option(help: ArgumentHelp("Largest non-streamed response in bytes, estimated before the work (default 8388608); larger ones get 400.", valueName: "bytes"))
    var maxResponseBytes: String?
    @Option(help: ArgumentHelp("Seconds in-flight requests may run after SIGTERM/SIGINT (default 30).", valueName: "seconds"))
    var shutdownGraceSeconds: String?
    @Option(help: ArgumentHelp("Seconds /readyz answers 503 after SIGTERM/SIGINT before the listener closes (default 2).", valueName: "seconds"))
    var drainDelaySeconds: String?
    @Option(help: ArgumentHelp("trace, debug, info, notice, warning, error or critical (default info).", valueName: "level"))
    var logLevel: String?
    @Option(help: ArgumentHelp("JSON file naming extra task-head files (sequence/token classification, QA) for the same body.", valueName: "file"))
    var heads: String?
    @Option(help: ArgumentHelp("Pooling of /v1/embeddings: mean, weightedmean or last (default mean).", valueName: "rule"))
    var embeddingPooling: String?
    @Flag(help: "L2-normalise /v1/embeddings vectors.")
    var normalizeEmbeddings = false

    /// Flags as the config keys of `ServerOptions`.
    var flags: [String: String] {
        var flags: [String: String] = [:]
        flags["model"] = model
        flags["revision"] = revision
        flags["host"] = host
        flags["port"] = port
        flags["tls_cert"] = tlsCert
        flags["tls_key"] = tlsKey
        flags["model_name"] = modelName
        if !apiKey.isEmpty { flags["api_keys"] = apiKey.joined(separator: ",") }
        if metricsRequireKey { flags["metrics_require_key"] = "true" }
        flags["max_queued_requests"] = maxQueuedRequests
        flags["max_running_sequences"] = maxRunningSequences
        flags["threads"] = threads
        flags["kv_cache_mib"] = kvCacheMib
        flags["max_body_bytes"] = maxBodyBytes
        flags["max_connections"] = maxConnections
        flags["max_connections_per_client"] = maxConnectionsPerClient
        flags["max_concurrent_streams"] = maxConcurrentStreams
        flags["first_byte_timeout_seconds"] = firstByteTimeoutSeconds
        flags["send_timeout_seconds"] = sendTimeoutSeconds
        flags["min_send_bytes"] = minSendBytes
        flags["max_choices"] = maxChoices
        flags["max_response_bytes"] = maxResponseBytes
        flags["shutdown_grace_seconds"] = shutdownGraceSeconds
        flags["drain_delay_seconds"] = drainDelaySeconds
        flags["log_level"] = logLevel
        flags["heads"] = heads
        flags["embedding_pooling"] = embeddingPooling
        if normalizeEmbeddings { flags["normalize_embeddings"] = "true" }
        return flags
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        do {
            let options = try ServerOptions.resolve(configFile: config ?? environment["GPTNEO_CONFIG"], environment: environment, flags: flags)
            try await ServerRunner(options: options, sourceFile: #filePath).run()
        } catch {
            // One clear line, then a non-zero exit (startup failures only; a signal exits 0).
            FileHandle.standardError.write(Data("gptneo-server: error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
