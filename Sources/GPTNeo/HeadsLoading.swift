import Foundation

// Where heads come from:
// 1. the checkpoint directory itself: any `*.safetensors` there holding `score.*`, `classifier.*` or
//    `qa_outputs.*` (a GPTNeoFor...Classification/QuestionAnswering checkpoint), labels from its config.json;
// 2. extra head files named in a small JSON configuration, so one body serves every task:
//
//    {"heads": [
//      {"task": "sequence-classification", "file": "score.safetensors", "labels": ["neg", "neu", "pos"]},
//      {"task": "token-classification", "file": "ner.safetensors", "labels": ["O", "B-PER", "I-PER"]},
//      {"task": "question-answering", "file": "qa.safetensors"}
//    ]}
//
// `file` is relative to the configuration file. Optional per head: `pad_token_id` and `problem_type`
// (sequence classification; default: the checkpoint's config.json).

// MARK: - Configuration

/// One extra head file: a safetensors file holding only that head's tensors, under their checkpoint keys.
public struct ExtraHeadFile: Codable, Sendable, Equatable {
    public var task: TaskHeadKind
    /// Path of the safetensors file; relative paths are resolved against the configuration's folder.
    public var file: String
    /// Labels by output index; defaults to `LABEL_0`, `LABEL_1`, ... as transformers does.
    public var labels: [String]?
    public var padTokenID: Int?
    public var problemType: String?

    public init(task: TaskHeadKind, file: String, labels: [String]? = nil, padTokenID: Int? = nil, problemType: String? = nil) {
        self.task = task; self.file = file; self.labels = labels; self.padTokenID = padTokenID; self.problemType = problemType
    }

    enum CodingKeys: String, CodingKey {
        case task, file, labels
        case padTokenID = "pad_token_id"
        case problemType = "problem_type"
    }
}

/// The extra heads a server carries on its one body.
public struct HeadsConfiguration: Codable, Sendable, Equatable {
    public var heads: [ExtraHeadFile]
    /// Folder that relative `file` paths are resolved against (not part of the JSON).
    public var baseDirectory: URL?

    enum CodingKeys: String, CodingKey { case heads }

    public init(heads: [ExtraHeadFile], baseDirectory: URL? = nil) {
        self.heads = heads; self.baseDirectory = baseDirectory
    }

    /// Reads a configuration file; relative head paths then resolve against its folder.
    public static func load(from url: URL) throws -> HeadsConfiguration {
        guard let data = try? Data(contentsOf: url) else { throw HeadsError.fileNotReadable(path: url.path) }
        do {
            var configuration = try JSONDecoder().decode(HeadsConfiguration.self, from: data)
            configuration.baseDirectory = url.deletingLastPathComponent()
            return configuration
        } catch let error as DecodingError {
            throw HeadsError.malformedConfiguration(path: url.path, reason: "\(error)")
        }
    }

    func url(of head: ExtraHeadFile) -> URL {
        if head.file.hasPrefix("/") { return URL(fileURLWithPath: head.file) }
        return (baseDirectory ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
            .appendingPathComponent(head.file)
    }
}

// MARK: - Checkpoint config fields the heads need

/// The few config.json keys heads read (the engine decodes the rest).
struct HeadConfigFields: Decodable {
    var hiddenSize: Int?
    var id2label: [String: String]?
    var problemType: String?
    var padTokenID: Int?

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", id2label
        case problemType = "problem_type", padTokenID = "pad_token_id"
    }

    static func read(directory: URL) throws -> HeadConfigFields {
        let url = directory.appendingPathComponent("config.json")
        guard let data = try? Data(contentsOf: url) else { throw HeadsError.fileNotReadable(path: url.path) }
        do { return try JSONDecoder().decode(HeadConfigFields.self, from: data) } catch {
            throw HeadsError.malformedConfiguration(path: url.path, reason: "\(error)")
        }
    }

    /// Labels by id when `id2label` covers exactly 0..<count.
    func labels(count: Int) -> [String]? {
        guard let id2label, id2label.count == count else { return nil }
        let ordered = (0..<count).compactMap { id2label[String($0)] }
        return ordered.count == count ? ordered : nil
    }
}

// MARK: - Loading

extension TaskHeads {
    /// The heads in `checkpointDirectory`'s safetensors files plus those named in `extra`.
    /// Every tensor's shape is checked against `hiddenSize` and the label count.
    public static func load(checkpointDirectory: URL, hiddenSize: Int, extra: HeadsConfiguration? = nil) throws -> TaskHeads {
        let config = try HeadConfigFields.read(directory: checkpointDirectory)
        var heads = TaskHeads()
        var found: Set<TaskHeadKind> = []

        // 1. Heads inside the checkpoint (its weight files, as transformers finds them).
        for file in try checkpointFiles(checkpointDirectory) {
            let names = Set(try HeadSafetensors.tensorNames(in: file))
            for kind in TaskHeadKind.allCases where names.contains(kind.tensorPrefix + ".weight") {
                guard found.insert(kind).inserted else { throw HeadsError.duplicateHead(kind) }
                try heads.install(kind: kind, file: file, hiddenSize: hiddenSize, labels: nil,
                                  padTokenID: config.padTokenID, problemType: config.problemType, config: config)
            }
        }

        // 2. Extra head files.
        for head in extra?.heads ?? [] {
            guard found.insert(head.task).inserted else { throw HeadsError.duplicateHead(head.task) }
            try heads.install(kind: head.task, file: extra!.url(of: head), hiddenSize: hiddenSize, labels: head.labels,
                              padTokenID: head.padTokenID ?? config.padTokenID,
                              problemType: head.problemType ?? config.problemType, config: config)
        }
        return heads
    }

    /// As `load(checkpointDirectory:hiddenSize:extra:)` with `hidden_size` from the checkpoint's config.json.
    public static func load(checkpointDirectory: URL, extra: HeadsConfiguration? = nil) throws -> TaskHeads {
        let config = try HeadConfigFields.read(directory: checkpointDirectory)
        guard let hiddenSize = config.hiddenSize, hiddenSize > 0 else {
            throw HeadsError.malformedConfiguration(path: checkpointDirectory.appendingPathComponent("config.json").path,
                                                    reason: "no positive hidden_size")
        }
        return try load(checkpointDirectory: checkpointDirectory, hiddenSize: hiddenSize, extra: extra)
    }

    /// `model.safetensors`, else the shards named in `model.safetensors.index.json`, else none.
    static func checkpointFiles(_ directory: URL) throws -> [URL] {
        let single = directory.appendingPathComponent("model.safetensors")
        if FileManager.default.fileExists(atPath: single.path) { return [single] }
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        guard FileManager.default.fileExists(atPath: index.path) else { return [] }
        guard let data = try? Data(contentsOf: index),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let weightMap = object["weight_map"] as? [String: String]
        else { throw HeadsError.malformedConfiguration(path: index.path, reason: "no weight_map of tensor name to shard file") }
        return Set(weightMap.values).sorted().map { directory.appendingPathComponent($0) }
    }

    private mutating func install(kind: TaskHeadKind, file: URL, hiddenSize: Int, labels: [String]?,
                                  padTokenID: Int?, problemType: String?, config: HeadConfigFields) throws {
        let weightName = kind.tensorPrefix + ".weight", biasName = kind.tensorPrefix + ".bias"
        let tensors = try HeadSafetensors.read([weightName, biasName], from: file)
        guard let weight = tensors[weightName] else { throw HeadsError.missingTensor(tensor: weightName, path: file.path) }
        guard weight.shape.count == 2, weight.shape[1] == hiddenSize, weight.shape[0] > 0 else {
            throw HeadsError.shapeMismatch(tensor: weightName, expected: [kind == .questionAnswering ? 2 : -1, hiddenSize],
                                           actual: weight.shape)
        }
        let outputs = weight.shape[0]
        var bias: [Float]? = nil
        if kind.hasBias {
            guard let b = tensors[biasName] else { throw HeadsError.missingTensor(tensor: biasName, path: file.path) }
            guard b.shape == [outputs] else { throw HeadsError.shapeMismatch(tensor: biasName, expected: [outputs], actual: b.shape) }
            bias = b.values
        }
        let linear = LinearHead(weight: weight.values, bias: bias, outputs: outputs, inputs: hiddenSize)

        func resolvedLabels() throws -> [String] {
            let resolved = labels ?? config.labels(count: outputs) ?? (0..<outputs).map { "LABEL_\($0)" }
            guard resolved.count == outputs else {
                throw HeadsError.labelCountMismatch(head: kind, labels: resolved.count, outputs: outputs)
            }
            return resolved
        }
        switch kind {
        case .sequenceClassification:
            sequenceClassification = SequenceClassificationHead(
                linear: linear, labels: try resolvedLabels(), problemType: problemType, padTokenID: padTokenID)
        case .tokenClassification:
            tokenClassification = TokenClassificationHead(linear: linear, labels: try resolvedLabels())
        case .questionAnswering:
            guard outputs == 2 else { throw HeadsError.shapeMismatch(tensor: weightName, expected: [2, hiddenSize], actual: weight.shape) }
            questionAnswering = QuestionAnsweringHead(linear: linear)
        }
    }
}
