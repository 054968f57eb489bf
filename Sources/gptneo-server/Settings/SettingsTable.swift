// MARK: - Every setting, once

/// The one list of settings. Flags, `GPTNEO_*` variables, config-file keys, `--help`,
/// `--check-config` and config/gptneo-server.yaml (checked by a test) all follow from it; adding a
/// setting is one entry here plus its field in `ServerOptions`.
enum SettingsTable {
    static var all: [Setting] {
        [
            // MARK: server
            .text("server.host", flag: "host", \.host,
                  help: "Address to listen on: 127.0.0.1, 0.0.0.0, ::1, :: or a host name."),
            .integer("server.port", flag: "port", \.port, 0...65535, help: "TCP port; 0 picks a free one."),
            .optional("server.tls_cert", flag: "tls-cert", kind: .path, \.tlsCert,
                      help: "Serve HTTPS with this PEM certificate chain (leaf first); needs server.tls_key. SIGHUP re-reads both."),
            .optional("server.tls_key", flag: "tls-key", kind: .path, \.tlsKey, help: "PEM private key of server.tls_cert."),
            .integer("server.max_connections", flag: "max-connections", \.maxConnections, 1...1_000_000,
                     help: "Connections served at once; at the limit the longest-idle one is closed to make room, none idle: 503."),
            .integer("server.max_connections_per_client", flag: "max-connections-per-client", \.maxConnectionsPerClient, 0...1_000_000,
                     help: "Connections from one client address at once, limited the same way; 0: no cap (e.g. behind a proxy)."),
            .integer("server.max_concurrent_streams", flag: "max-concurrent-streams", \.maxConcurrentStreams, 1...10_000,
                     help: "HTTP/2 streams open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS)."),
            .integer("server.max_body_bytes", flag: "max-body-bytes", \.maxBodyBytes, 1024...(1 << 30),
                     help: "Largest request body; larger ones get 413."),
            .integer("server.max_header_bytes", flag: "max-header-bytes", \.maxHeaderBytes, 1024...(1 << 20),
                     help: "Largest request head (all header lines); larger ones get 431."),
            .seconds("server.first_byte_timeout_seconds", flag: "first-byte-timeout-seconds", \.firstByteTimeoutSeconds, 0.001...3600,
                     help: "A new connection (or TLS handshake) that sends nothing this long is closed."),
            .seconds("server.head_timeout_seconds", flag: "head-timeout-seconds", \.headTimeoutSeconds, 0.001...3600,
                     help: "Time to receive a request's head; then 408."),
            .seconds("server.body_timeout_seconds", flag: "body-timeout-seconds", \.bodyTimeoutSeconds, 0.001...3600,
                     help: "Longest pause between two reads of a request body; then 408."),
            .seconds("server.idle_timeout_seconds", flag: "idle-timeout-seconds", \.idleTimeoutSeconds, 0.001...86400,
                     help: "A keep-alive connection waiting for its next request is closed after this."),
            .seconds("server.send_timeout_seconds", flag: "send-timeout-seconds", \.sendTimeoutSeconds, 0.001...3600,
                     help: "Window of the minimum send rate: while a response waits on a client, it must take server.min_send_bytes per window."),
            .integer("server.min_send_bytes", flag: "min-send-bytes", \.minSendBytes, 0...(1 << 30),
                     help: "Bytes a client must take per send window while a response waits for it, else the connection is cut."),
            .integer("server.max_choices", flag: "max-choices", \.maxChoices, 1...128, help: "Largest n / best_of per prompt."),
            .integer("server.max_response_bytes", flag: "max-response-bytes", \.maxResponseBytes, 65536...(1 << 30),
                     help: "Largest non-streamed answer, estimated before any work from n, max_tokens, logprobs, echo and the prompt; larger: 400, use stream."),

            // MARK: model
            .optional("model.path", flag: "model", kind: .path, \.model,
                      help: "Hugging Face GPT-Neo checkpoint directory (config.json, safetensors or pytorch_model.bin weights, tokenizer files), or a repo id OWNER/NAME already in the Hugging Face cache; unset: the bundled default model."),
            .text("model.revision", flag: "revision", \.revision, help: "Branch, tag or commit of a repo id model.path in the Hugging Face cache."),
            .optional("model.name", flag: "model-name", \.modelName,
                      help: "Model id reported by /v1/models and accepted in requests; unset: the checkpoint directory's name."),
            .optional("model.heads", flag: "heads", kind: .path, \.heads,
                      help: "JSON file naming task-head files (sequence/token classification, QA) for the same body."),
            .choice("model.embedding_pooling", flag: "embedding-pooling", \.embeddingPooling, ["mean", "weightedmean", "last"],
                    help: "How /v1/embeddings pools token states."),
            .boolean("model.normalize_embeddings", flag: "normalize-embeddings", \.normalizeEmbeddings,
                     help: "L2-normalise /v1/embeddings vectors."),
            .choice("model.dtype", flag: "dtype", \.dtype,
                    help: "Precision the weights are kept in: auto (the checkpoint's), float32, float16 or bfloat16."),
            .choice("model.quantization", flag: "quantization", \.quantization,
                    help: "none, or int8: int8 weights with a scale per output channel, quantized at load, multiplied by activations quantized to int8 per block of 32."),
            .boolean("model.huge_pages", flag: "huge-pages", \.hugePages,
                     help: "Keep weight matrices in transparent huge pages (MADV_HUGEPAGE): decode steps 1-10 % faster, but where the kernel must find or compact memory for them, loading up to a second slower per 500 MB of weights."),
            .optionalInteger("model.threads", flag: "threads", \.threads, 1...1024,
                             help: "Threads of the forward pass and of repacking at load; unset: the CPUs this process may use (affinity mask, cgroup CPU quota)."),

            // MARK: batching
            .integer("batching.max_running_sequences", flag: "max-running-sequences", \.maxRunningSequences, 1...4096,
                     help: "Most sequences decoded together in one batch."),
            .integer("batching.max_queued_requests", flag: "max-queued-requests", \.maxQueuedRequests, 1...1_000_000,
                     help: "Requests that may wait for the batch; beyond, new ones get 429."),
            .integer("batching.kv_cache_mib", flag: "kv-cache-mib", \.kvCacheMiB, 1...1_048_576,
                     help: "KV cache budget in MiB, shared by the running sequences."),
            .integer("batching.prefill_chunk_tokens", flag: "prefill-chunk-tokens", \.prefillChunkTokens, 1...65536,
                     help: "Prompt tokens of one sequence processed per step while others decode, so long prompts do not stall them; with none decoding, a prompt takes whole chunks up to max_prefill_tokens_per_step."),
            .integer("batching.max_prefill_tokens_per_step", flag: "max-prefill-tokens-per-step", \.maxPrefillTokensPerStep, 1...1_048_576,
                     help: "Prompt tokens of all sequences processed per step."),
            .integer("batching.admission_window_ms", flag: "admission-window-ms", \.admissionWindowMilliseconds, 0...1000,
                     help: "Milliseconds a request arriving at an idle server waits for others, so that a burst shares its first step; 0 starts at once."),
            .seconds("batching.kv_cache_keep_idle_seconds", flag: "kv-cache-keep-idle-seconds", \.kvCacheKeepIdleSeconds, 1...86400,
                     help: "KV cache memory of ended requests is kept for the next ones, up to the budget, and given back to the system after this long with nothing to do."),

            // MARK: auth
            .list("auth.api_keys", flag: "api-key", environment: "GPTNEO_API_KEYS", \.apiKeys, secret: true, reloadable: true,
                  help: "Accepted API keys; with any key set, /v1/* needs 'Authorization: Bearer KEY'. Prefer auth.api_keys_file."),
            .optional("auth.api_keys_file", flag: "api-keys-file", kind: .path, \.apiKeysFile, reloadable: true,
                      help: "File of API keys (one per line, # comments) or directory of files (one key per file, e.g. a mounted Secret); re-read when it changes and on SIGHUP."),
            .boolean("auth.metrics_require_key", flag: "metrics-require-key", \.metricsRequireKey, help: "Require an API key for /metrics too."),

            // MARK: logging
            .choice("logging.level", flag: "log-level", \.logLevel, logLevels, reloadable: true,
                    help: "Least severe level logged; re-read from the config file on SIGHUP."),
            .choice("logging.format", flag: "log-format", \.logFormat, ["text", "json"],
                    help: "text: one readable line per event; json: one JSON object per line, for log shippers."),
            .choice("logging.access_log_level", flag: "access-log-level", \.accessLogLevel, logLevels,
                    help: "Level of the one access-log line per request; below logging.level it is not written."),

            // MARK: shutdown
            .seconds("shutdown.drain_delay_seconds", flag: "drain-delay-seconds", \.drainDelaySeconds, 0...600,
                     help: "After SIGTERM/SIGINT, /readyz answers 503 this long before the listener closes."),
            .seconds("shutdown.grace_seconds", flag: "shutdown-grace-seconds", \.shutdownGraceSeconds, 0...3600,
                     help: "After the listener closes, in-flight requests may run this long."),
        ]
    }

    /// Rules across settings, checked once every source has been applied.
    static func validate(_ resolved: ResolvedSettings) throws(SettingsError) {
        let options = resolved.options
        if (options.tlsCert == nil) != (options.tlsKey == nil) {
            let (given, missing) = options.tlsCert == nil ? ("server.tls_key", "server.tls_cert") : ("server.tls_cert", "server.tls_key")
            throw .missingCompanion(key: given, source: resolved.sources[given] ?? .defaultValue, companion: missing, reason: "HTTPS needs both")
        }
    }

    static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    static func setting(key: String) -> Setting? { all.first { $0.key == key } }
    static func setting(flag: String) -> Setting? { all.first { $0.flag == flag } }
}
