import Foundation
import GPTNeo

// MARK: - The server's settings, typed

/// Every setting of the process with its default. `SettingsTable` maps each field to its config-file
/// key, flag and environment variable; a field without an entry there cannot be set.
struct ServerOptions: Sendable, Equatable {
    // MARK: server
    var host = "127.0.0.1"
    /// 0 picks a free port (logged at startup).
    var port = 8000
    /// HTTPS: PEM certificate chain (leaf first) and private key; both or neither.
    var tlsCert: String?
    var tlsKey: String?
    var maxConnections = 1024
    /// Connections from one client address at once (0: no cap).
    var maxConnectionsPerClient = 256
    /// HTTP/2 streams open at once on one connection.
    var maxConcurrentStreams = 100
    var maxBodyBytes = 1 << 20
    var maxHeaderBytes = 16 * 1024
    var firstByteTimeoutSeconds = 5.0
    var headTimeoutSeconds = 10.0
    var bodyTimeoutSeconds = 30.0
    var idleTimeoutSeconds = 60.0
    /// While a response waits on a client, it must accept `minSendBytes` per this many seconds.
    var sendTimeoutSeconds = 60.0
    var minSendBytes = 32 * 1024
    var maxChoices = 16
    /// Largest non-streamed response, estimated before the work (beyond: 400 suggesting `stream`).
    var maxResponseBytes = 8 << 20

    // MARK: model
    /// Checkpoint directory, or a Hugging Face repo id (`owner/name`) found in the local hub cache;
    /// nil serves the bundled default model.
    var model: String?
    /// Branch, tag or commit of a repo id `model` in the hub cache.
    var revision = "main"
    /// The id `/v1/models` reports and requests may name; nil: the checkpoint directory's name.
    var modelName: String?
    /// Extra task-head configuration (JSON naming head files; see GPTNeo/HeadsLoading.swift).
    var heads: String?
    var embeddingPooling = "mean"
    var normalizeEmbeddings = false
    /// The precision weight matrices are kept in; auto keeps the checkpoint's (F16 stays F16).
    var dtype = WeightDType.auto
    /// int8: per-output-channel int8 weights quantized at load, integer dot products with int8 activations.
    var quantization = WeightQuantization.none
    /// Ask the kernel for transparent huge pages for the weight matrices (GPTNeo/WeightBuffer.swift).
    var hugePages = false
    /// Threads of the engine's parallel loops (and of repacking at load); nil: the CPUs this process
    /// may use (affinity and cgroup quota).
    var threads: Int?

    // MARK: batching
    var maxRunningSequences = 64
    var maxQueuedRequests = 256
    var kvCacheMiB = 2048
    var prefillChunkTokens = 128
    var maxPrefillTokensPerStep = 512
    var admissionWindowMilliseconds = 3
    var kvCacheKeepIdleSeconds = 300.0

    // MARK: auth
    var apiKeys: [String] = []
    /// A file of keys (one per line) or a directory of files (one key per file, as Kubernetes mounts a
    /// Secret); re-read on SIGHUP and when it changes.
    var apiKeysFile: String?
    var metricsRequireKey = false

    // MARK: logging
    var logLevel = "info"
    var logFormat = "text"
    var accessLogLevel = "info"

    // MARK: shutdown
    /// Seconds between SIGTERM and closing the listener, while /readyz already answers 503, so load
    /// balancers see the server leave before connections are refused.
    var drainDelaySeconds = 2.0
    /// Seconds in-flight requests may run after the listener closes.
    var shutdownGraceSeconds = 30.0
}
