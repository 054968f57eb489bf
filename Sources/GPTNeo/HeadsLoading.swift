import Foundation

// Where heads come from:
// 1. the checkpoint itself: its weight files (any format) holding `score.*`, `classifier.*` or
//    `qa_outputs.*` (a GPTNeoFor...Classification/QuestionAnswering checkpoint), labels from its config;
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

/// One extra head file: a weight file (safetensors or PyTorch) holding that head's tensors, under their checkpoint keys.
public struct ExtraHeadFile: Codable, Sendable, Equatable {
    public var task: TaskHeadKind
    /// Path of the weight file; relative paths are resolved against the configuration's folder.
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

// MARK: - Loading

extension TaskHeads {
    /// The heads in `model`'s checkpoint plus those named in `extra`.
    public static func load(model: GPTNeoModel, extra: HeadsConfiguration? = nil) throws -> TaskHeads {
        try load(config: model.config, checkpoint: model.checkpoint, extra: extra)
    }

    /// The heads in `checkpoint` plus those named in `extra`, labels and padding from `config`.
    /// Every tensor's shape is checked against `hidden_size` and the label count.
    public static func load(config: GPTNeoConfig, checkpoint: Checkpoint, extra: HeadsConfiguration? = nil) throws -> TaskHeads {
        var heads = TaskHeads()
        var found: Set<TaskHeadKind> = []

        // 1. Heads inside the checkpoint (its weight files, as transformers finds them).
        for kind in TaskHeadKind.allCases where checkpoint.tensorNames.contains(kind.tensorPrefix + ".weight") {
            found.insert(kind)
            try heads.install(kind: kind, checkpoint: checkpoint, config: config, labels: nil,
                              padTokenID: config.padTokenID, problemType: config.problemType)
        }

        // 2. Extra head files.
        for head in extra?.heads ?? [] {
            guard found.insert(head.task).inserted else { throw HeadsError.duplicateHead(head.task) }
            let file = try Checkpoint(file: extra!.url(of: head))
            try heads.install(kind: head.task, checkpoint: file, config: config, labels: head.labels,
                              padTokenID: head.padTokenID ?? config.padTokenID,
                              problemType: head.problemType ?? config.problemType)
        }
        return heads
    }

    private mutating func install(kind: TaskHeadKind, checkpoint: Checkpoint, config: GPTNeoConfig, labels: [String]?,
                                  padTokenID: Int?, problemType: String?) throws {
        let hiddenSize = config.hiddenSize
        let weightName = kind.tensorPrefix + ".weight", biasName = kind.tensorPrefix + ".bias"
        let path = checkpoint.directory.path
        guard let weightShape = checkpoint.tensorNames.contains(weightName) ? checkpoint.shape(of: weightName) : nil else {
            throw HeadsError.missingTensor(tensor: weightName, path: path)
        }
        guard weightShape.count == 2, weightShape[1] == hiddenSize, weightShape[0] > 0 else {
            throw HeadsError.shapeMismatch(tensor: weightName, expected: [kind == .questionAnswering ? 2 : -1, hiddenSize],
                                           actual: weightShape)
        }
        let outputs = weightShape[0]
        let reader = checkpoint.reader()
        let weight = reader.tensor(weightName, shape: weightShape)
        var bias: FloatTensor? = nil
        if kind.hasBias {
            guard let biasShape = checkpoint.tensorNames.contains(biasName) ? checkpoint.shape(of: biasName) : nil else {
                throw HeadsError.missingTensor(tensor: biasName, path: path)
            }
            guard biasShape == [outputs] else { throw HeadsError.shapeMismatch(tensor: biasName, expected: [outputs], actual: biasShape) }
            bias = reader.tensor(biasName, shape: biasShape)
        }
        try reader.finish()
        let linear = LinearHead(weight: weight.array, bias: bias?.array, outputs: outputs, inputs: hiddenSize)

        func resolvedLabels() throws -> [String] {
            let fromConfig = config.labels.count == outputs ? (0..<outputs).compactMap { config.labels[$0] } : []
            let resolved = labels ?? (fromConfig.count == outputs ? fromConfig : (0..<outputs).map { "LABEL_\($0)" })
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
            guard outputs == 2 else { throw HeadsError.shapeMismatch(tensor: weightName, expected: [2, hiddenSize], actual: weightShape) }
            questionAnswering = QuestionAnsweringHead(linear: linear)
        }
    }
}
