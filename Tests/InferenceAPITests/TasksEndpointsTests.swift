import Batcher
import Foundation
import GPTNeo
import HTTPServer
import Tokenizer
import XCTest

@testable import InferenceAPI

/// The task endpoints end to end on the tiny body with the fixture heads: real tokenizer, real batcher
/// (so task requests batch with each other and with generation), answers compared with transformers'.
final class TasksEndpointsTests: XCTestCase {
    static let fixtures = HeadFixtures.directory.deletingLastPathComponent()
    static let body = fixtures.appendingPathComponent("tiny-gpt-neo")

    struct Stack {
        var model: GPTNeoModel
        var tokenizer: GPT2Tokenizer
        var batcher: Batcher
        var heads: TaskHeads
        func context(_ embeddings: EmbeddingConfiguration = .init(), heads: TaskHeads? = nil) -> TaskServingContext {
            TaskServingContext(modelID: "tiny", heads: heads ?? self.heads, hiddenSize: model.config.hiddenSize,
                               contextLength: model.config.maxPositionEmbeddings, encoder: batcher, tokenizer: tokenizer,
                               embeddings: embeddings)
        }
    }

    /// One model and batcher for the whole class: loading is the slow part.
    nonisolated(unsafe) static var shared: Stack?

    func stack() throws -> Stack {
        if let shared = Self.shared { return shared }
        let model = try GPTNeoModel.load(directory: Self.body)
        let tokenizer = try GPT2Tokenizer.load(directory: Self.body)
        let batcher = Batcher(model: model, tokenizer: tokenizer, configuration: BatcherConfiguration())
        let extra = try HeadsConfiguration.load(from: HeadFixtures.directory.appendingPathComponent("heads.json"))
        let heads = try TaskHeads.load(model: model, extra: extra)
        let stack = Stack(model: model, tokenizer: tokenizer, batcher: batcher, heads: heads)
        Self.shared = stack
        return stack
    }

    func post(_ path: String, _ body: [String: Any], _ context: TaskServingContext) async throws -> (Int, [String: Any]) {
        try await Self.post(path, try JSONSerialization.data(withJSONObject: body), context)
    }

    static func post(_ path: String, _ data: Data, _ context: TaskServingContext) async throws -> (Int, [String: Any]) {
        let request = HTTPRequest(method: "POST", target: path, headers: ["Content-Type": "application/json"],
                                  body: Array(data), requestID: "test")
        let handler: TaskEndpoints.Handler = switch path {
        case "/v1/classify": TaskEndpoints.classify
        case "/v1/classify-tokens": TaskEndpoints.classifyTokens
        case "/v1/answer": TaskEndpoints.answer
        default: TaskEndpoints.embeddings
        }
        let response = await TaskEndpoints.respond(request, context: context, handler)
        guard case .bytes(let bytes) = response.body else { XCTFail("streamed"); return (0, [:]) }
        return (response.status, try JSONSerialization.jsonObject(with: Data(bytes)) as! [String: Any])
    }

    /// Largest score deviation seen by `assertClose` in the current test (printed at its end).
    var worstDeviation = 0.0

    override func tearDown() {
        print("\(name): max score deviation from transformers \(worstDeviation)")
        super.tearDown()
    }

    func assertClose(_ got: Any?, _ want: Any?, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let g = got as? Double, let w = want as? Double else { return XCTFail("\(what): \(String(describing: got)) vs \(String(describing: want))", file: file, line: line) }
        worstDeviation = max(worstDeviation, abs(g - w))
        XCTAssertLessThan(abs(g - w), 1e-4, "\(what): \(g) vs \(w)", file: file, line: line)
    }

    // MARK: - /v1/classify

    func testClassifyMatchesThePipeline() async throws {
        let context = try stack().context()
        let fixture = try HeadFixtures.load("expected_classification.json")
        let cases = fixture["cases"] as! [[String: Any]]
        let (status, json) = try await post("/v1/classify", ["input": cases.map { $0["text"]! }, "top_k": NSNull()], context)
        XCTAssertEqual(status, 200, "\(json)")
        let data = json["data"] as! [[String: Any]]
        let expected = fixture["batched_top_k_none"] as! [[[String: Any]]]
        XCTAssertEqual(data.count, expected.count)
        for (i, (item, want)) in zip(data, expected).enumerated() {
            XCTAssertEqual(item["index"] as? Int, i)
            let scores = item["scores"] as! [[String: Any]]
            XCTAssertEqual(scores.map { $0["label"] as! String }, want.map { $0["label"] as! String }, "input \(i)")
            XCTAssertEqual(item["label"] as? String, want[0]["label"] as? String)
            for (g, w) in zip(scores, want) { assertClose(g["score"], w["score"], "input \(i)") }
        }
        let tokens = cases.reduce(0) { $0 + ($1["token_ids"] as! [Int]).count }
        XCTAssertEqual((json["usage"] as! [String: Any])["prompt_tokens"] as? Int, tokens)

        // A single input with function_to_apply and the default top_k (1).
        let variant = (cases[0]["variants"] as! [[String: Any]]).first { ($0["parameters"] as! [String: Any]).keys.sorted() == ["function_to_apply"] && ($0["parameters"] as! [String: Any])["function_to_apply"] as? String == "none" }!
        let (_, single) = try await post("/v1/classify", ["input": cases[0]["text"]!, "function_to_apply": "none"], context)
        let scores = (single["data"] as! [[String: Any]])[0]["scores"] as! [[String: Any]]
        let want = variant["output"] as! [[String: Any]]
        XCTAssertEqual(scores.count, 1)
        XCTAssertEqual(scores[0]["label"] as? String, want[0]["label"] as? String)
        assertClose(scores[0]["score"], want[0]["score"], "function none")
    }

    // MARK: - /v1/classify-tokens

    func testClassifyTokensMatchesThePipelineForEveryStrategy() async throws {
        let context = try stack().context()
        let cases = try HeadFixtures.load("expected_token_classification.json")["cases"] as! [[String: Any]]
        for strategy in AggregationStrategy.allCases {
            for ignore in [nil, [String](), ["O", "B-LOC"]] {
                var body: [String: Any] = ["input": cases.map { $0["text"]! }, "aggregation_strategy": strategy.rawValue]
                if let ignore { body["ignore_labels"] = ignore }
                let (status, json) = try await post("/v1/classify-tokens", body, context)
                XCTAssertEqual(status, 200, "\(json)")
                for (i, item) in (json["data"] as! [[String: Any]]).enumerated() {
                    let run = (cases[i]["outputs"] as! [[String: Any]]).first {
                        let p = $0["parameters"] as! [String: Any]
                        return p["aggregation_strategy"] as? String == strategy.rawValue && p["ignore_labels"] as? [String] == ignore
                    }!
                    let want = run["output"] as! [[String: Any]], got = item["entities"] as! [[String: Any]]
                    let label = "\(strategy) \(String(describing: ignore)) \(cases[i]["text"]!)"
                    XCTAssertEqual(got.count, want.count, label)
                    for (g, w) in zip(got, want) {
                        for key in ["entity", "entity_group", "word"] { XCTAssertEqual(g[key] as? String, w[key] as? String, label) }
                        for key in ["index", "start", "end"] { XCTAssertEqual(g[key] as? Int, w[key] as? Int, label) }
                        XCTAssertEqual(Set(g.keys), Set(w.keys), label)
                        assertClose(g["score"], w["score"], label)
                    }
                }
            }
        }
    }

    // MARK: - /v1/answer

    func testAnswerMatchesThePipelineIncludingLongContexts() async throws {
        let context = try stack().context()
        let cases = try HeadFixtures.load("expected_question_answering.json")["cases"] as! [[String: Any]]
        for c in cases {
            for run in c["runs"] as! [[String: Any]] {
                var body = run["parameters"] as! [String: Any]
                body["question"] = c["question"]; body["context"] = c["context"]
                let (status, json) = try await post("/v1/answer", body, context)
                XCTAssertEqual(status, 200, "\(json)")
                let got = (json["data"] as! [[String: Any]])[0]["answers"] as! [[String: Any]]
                let want = run["output"] as! [[String: Any]]
                let label = "\(c["question"]!) \(run["parameters"]!)"
                XCTAssertEqual(got.map { $0["answer"] as! String }, want.map { $0["answer"] as! String }, label)
                XCTAssertEqual(got.map { $0["start"] as! Int }, want.map { $0["start"] as! Int }, label)
                XCTAssertEqual(got.map { $0["end"] as! Int }, want.map { $0["end"] as! Int }, label)
                for (g, w) in zip(got, want) { assertClose(g["score"], w["score"], label) }
            }
        }
    }

    // MARK: - /v1/embeddings

    func testEmbeddingsMatchGPTNeoModelForEveryPooling() async throws {
        let stack = try stack()
        let cases = try HeadFixtures.load("expected_embeddings.json")["cases"] as! [[String: Any]]
        for pooling in EmbeddingPooling.allCases {
            for normalize in [false, true] {
                let context = stack.context(EmbeddingConfiguration(pooling: pooling, normalize: normalize))
                let key = pooling.rawValue + (normalize ? "_normalized" : "")
                // Texts, then the same as token arrays in base64.
                let (_, json) = try await post("/v1/embeddings", ["input": cases.map { $0["text"]! }], context)
                let (_, tokens) = try await post("/v1/embeddings", ["input": cases.map { $0["token_ids"]! }, "encoding_format": "base64"], context)
                XCTAssertEqual(json["object"] as? String, "list")
                for (i, c) in cases.enumerated() {
                    let want = c[key] as! [Double]
                    let got = (json["data"] as! [[String: Any]])[i]["embedding"] as! [Double]
                    let encoded = Data(base64Encoded: (tokens["data"] as! [[String: Any]])[i]["embedding"] as! String)!
                    let decoded = encoded.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                    XCTAssertEqual(got.count, want.count)
                    let worst = zip(got, want).map { abs($0 - $1) }.max()!
                    worstDeviation = max(worstDeviation, worst)
                    XCTAssertLessThan(worst, 1e-4, "\(key) \(c["text"]!)")
                    XCTAssertEqual(decoded.map(Double.init), got.map { Double(Float($0)) }, "base64 carries the same floats")
                }
            }
        }
    }

    // MARK: - Errors

    func testMissingHeadsAndBadFieldsAre400s() async throws {
        let stack = try stack()
        let bare = stack.context(heads: TaskHeads())
        for (path, head) in [("/v1/classify", "sequence-classification"), ("/v1/classify-tokens", "token-classification"),
                             ("/v1/answer", "question-answering")] {
            let (status, json) = try await post(path, ["input": "x", "question": "q", "context": "c"], bare)
            XCTAssertEqual(status, 400, path)
            let error = json["error"] as! [String: Any]
            XCTAssertEqual(error["code"] as? String, "missing_head")
            XCTAssertTrue((error["message"] as! String).contains(head), "\(error)")
        }
        XCTAssertEqual(bare.tasks, ["text-generation", "embeddings"])
        XCTAssertEqual(stack.context().tasks, ["text-generation", "embeddings", "text-classification", "token-classification", "question-answering"])

        let context = stack.context()
        let bad: [(String, [String: Any], String)] = [
            ("/v1/embeddings", ["input": "hi", "dimensions": 8], "dimensions"),
            ("/v1/embeddings", ["input": "hi", "encoding_format": "int8"], "encoding_format"),
            ("/v1/embeddings", ["input": ""], "input"),
            ("/v1/embeddings", ["input": [1, 99999]], "input"),
            ("/v1/embeddings", ["input": []], "input"),
            ("/v1/classify", ["input": ["ok", 3]], "input"),
            ("/v1/classify", ["input": "ok", "function_to_apply": "tanh"], "function_to_apply"),
            ("/v1/classify", ["input": "ok", "top_k": 0], "top_k"),
            ("/v1/classify-tokens", ["input": "ok", "aggregation_strategy": "mean"], "aggregation_strategy"),
            ("/v1/answer", ["question": "q", "context": "c", "max_seq_len": 100_000], "max_seq_len"),
            ("/v1/answer", ["question": "q", "context": ""], "context"),
            ("/v1/answer", ["question": ["a", "b"], "context": ["c"]], "context"),
            ("/v1/answer", ["question": "a b c d e", "context": "words and more words", "max_seq_len": 3], "question"),
            ("/v1/classify", ["input": String(repeating: "a ", count: 600)], "input"),
        ]
        for (path, body, param) in bad {
            let (status, json) = try await post(path, body, context)
            XCTAssertEqual(status, 400, "\(path) \(body)")
            XCTAssertEqual((json["error"] as? [String: Any])?["param"] as? String, param, "\(path) \(body): \(json)")
        }
        let (status, _) = try await post("/v1/classify", ["input": "ok", "model": "other"], context)
        XCTAssertEqual(status, 404)
        var limited = context
        limited.limits.maxWindows = 3
        let long = String(repeating: "word ", count: 40)
        let (tooMany, json) = try await post("/v1/answer", ["question": "q", "context": long, "max_seq_len": 12, "doc_stride": 2], limited)
        XCTAssertEqual(tooMany, 400)
        XCTAssertEqual((json["error"] as? [String: Any])?["param"] as? String, "context")
    }

    // MARK: - Through the service

    func testServiceRoutesTaskEndpointsBehindTheKeysAndListsTasks() async throws {
        let stack = try stack()
        var configuration = APIConfiguration()
        configuration.apiKeys = ["secret"]
        let service = InferenceService(configuration: configuration)
        try await service.start(with: ServingContext(
            backend: stack.batcher, tokenizer: stack.tokenizer,
            model: ModelDescription(id: "tiny", contextLength: 512), tasks: stack.context()))
        func call(_ method: String, _ path: String, _ body: String = "", key: String? = "secret") async -> (Int, [String: Any]) {
            var headers: HTTPHeaders = ["Content-Type": "application/json"]
            if let key { headers.add(name: "Authorization", value: "Bearer \(key)") }
            let response = await service.handle(HTTPRequest(method: method, target: path, headers: headers, body: Array(body.utf8), requestID: "t"))
            guard case .bytes(let bytes) = response.body, !bytes.isEmpty else { return (response.status, [:]) }
            return (response.status, (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:])
        }
        let (status, models) = await call("GET", "/v1/models")
        XCTAssertEqual(status, 200)
        XCTAssertEqual((models["data"] as? [[String: Any]])?.first?["tasks"] as? [String],
                       ["text-generation", "embeddings", "text-classification", "token-classification", "question-answering"])
        let (classified, json) = await call("POST", "/v1/classify", #"{"input": "ok", "top_k": null}"#)
        XCTAssertEqual(classified, 200, "\(json)")
        XCTAssertEqual(((json["data"] as? [[String: Any]])?.first?["scores"] as? [Any])?.count, 3)
        let (embedded, _) = await call("POST", "/v1/embeddings", #"{"input": ["a", "b"]}"#)
        XCTAssertEqual(embedded, 200)
        let (unauthorized, _) = await call("POST", "/v1/answer", #"{"question": "q", "context": "c"}"#, key: nil)
        XCTAssertEqual(unauthorized, 401)
        let (wrongMethod, _) = await call("GET", "/v1/classify-tokens")
        XCTAssertEqual(wrongMethod, 405)
        let metrics = await service.handle(HTTPRequest(method: "GET", target: "/metrics", headers: [:], body: [], requestID: "m"))
        guard case .bytes(let text) = metrics.body else { return XCTFail("metrics streamed") }
        XCTAssertTrue(String(decoding: text, as: UTF8.self).contains("/v1/classify"), "task requests are counted per endpoint")
    }

    // MARK: - Mixed with generation

    func testTaskRequestsBatchedWithGenerationGiveTheSameAnswers() async throws {
        let stack = try stack()
        let context = stack.context()
        let fixture = try HeadFixtures.load("expected_classification.json")
        let texts = (fixture["cases"] as! [[String: Any]]).map { $0["text"] as! String }
        let expected = fixture["batched_top_k_none"] as! [[[String: Any]]]
        let expectedLabels = expected.map { $0.map { $0["label"] as! String } }
        let expectedScores = expected.map { $0.map { $0["score"] as! Double } }
        let qa = (try HeadFixtures.load("expected_question_answering.json")["cases"] as! [[String: Any]])[2]
        let qaRun = (qa["runs"] as! [[String: Any]])[1]
        var qaBody = qaRun["parameters"] as! [String: Any]
        qaBody["question"] = qa["question"]; qaBody["context"] = qa["context"]
        let qaRequest = try JSONSerialization.data(withJSONObject: qaBody)
        let qaAnswers = (qaRun["output"] as! [[String: Any]]).map { $0["answer"] as! String }
        let qaScores = (qaRun["output"] as! [[String: Any]]).map { $0["score"] as! Double }
        let classifyRequests = try texts.map { try JSONSerialization.data(withJSONObject: ["input": $0, "top_k": NSNull()]) }
        let batcher = stack.batcher

        try await withThrowingTaskGroup(of: Void.self) { group in
            // Generation streams running throughout.
            for seed in 0..<4 {
                group.addTask {
                    var parameters = GenerationParameters()
                    parameters.maxTokens = 48; parameters.temperature = 0; parameters.ignoreEOS = true
                    var tokens = 0
                    for try await event in try batcher.submit(GenerationRequest(promptTokens: [464 + seed, 2068, 7586], parameters: parameters)) {
                        if case .token = event { tokens += 1 }
                    }
                    XCTAssertEqual(tokens, 48)
                }
            }
            // Single-input classification requests, one per text, concurrently.
            for i in texts.indices {
                let request = classifyRequests[i], labels = expectedLabels[i], scores = expectedScores[i]
                group.addTask {
                    let (status, json) = try await Self.post("/v1/classify", request, context)
                    XCTAssertEqual(status, 200)
                    let got = (json["data"] as! [[String: Any]])[0]["scores"] as! [[String: Any]]
                    XCTAssertEqual(got.map { $0["label"] as! String }, labels)
                    for (g, w) in zip(got, scores) { XCTAssertEqual(g["score"] as! Double, w, accuracy: 1e-4) }
                }
            }
            // A multi-window question.
            group.addTask {
                let (_, json) = try await Self.post("/v1/answer", qaRequest, context)
                let got = (json["data"] as! [[String: Any]])[0]["answers"] as! [[String: Any]]
                XCTAssertEqual(got.map { $0["answer"] as! String }, qaAnswers)
                for (g, w) in zip(got, qaScores) { XCTAssertEqual(g["score"] as! Double, w, accuracy: 1e-4) }
            }
            try await group.waitForAll()
        }
    }
}

extension TasksEndpointsTests {
    /// A long shared context with a tiny stride and many questions needs far more windows than allowed:
    /// the count is computed before any window is built and the context is tokenized once, so the
    /// refusal is quick and costs no memory in proportion to questions × windows.
    func testAnswerRefusesTooManyWindowsBeforeBuildingThem() async throws {
        let running = try await RunningServer.start(for: self)
        let context = String(repeating: "Ann met Bob in Paris on a sunny day. ", count: 20_000)
        let questions = JSONValue.array(Array(repeating: .string("Where did Ann meet Bob?"), count: 250)).encodedString
        let body = #"{"question":\#(questions),"context":"\#(context)","max_seq_len":16,"doc_stride":8}"#
        let before = residentBytes()
        let started = ContinuousClock.now
        let reply = try await running.client.send("POST", "/v1/answer", json: body)
        let elapsed = ContinuousClock.now - started
        XCTAssertEqual(reply.status, 400, reply.text)
        XCTAssertEqual(try JSONParser.parse(reply.body)["error"]?["param"]?.stringValue, "context")
        XCTAssertLessThan(elapsed, .seconds(10), "refused before the per-question work")
        XCTAssertLessThan(residentBytes() - before, 200 << 20, "resident memory grew by \(residentBytes() - before) bytes")
        print("answer refusal: \(elapsed), RSS growth \((residentBytes() - before) >> 20) MiB")
        try await running.assertAlive()
    }

    /// One shared context answers every question as a per-question request would.
    func testSharedContextAnswersEqualSeparateRequests() async throws {
        let running = try await RunningServer.start(for: self)
        let context = "Ann met Bob in Paris. Later Bob flew to Rome with Carla."
        let questions = ["Who met Bob?", "Where did Bob fly?"]
        let shared = try await running.client.send("POST", "/v1/answer", json: #"{"question":\#(JSONValue.array(questions.map { .string($0) }).encodedString),"context":"\#(context)","max_seq_len":12,"doc_stride":3}"#)
        XCTAssertEqual(shared.status, 200, shared.text)
        let sharedData = try XCTUnwrap(JSONParser.parse(shared.body)["data"]?.arrayValue)
        for (i, question) in questions.enumerated() {
            let single = try await running.client.send("POST", "/v1/answer", json: #"{"question":"\#(question)","context":"\#(context)","max_seq_len":12,"doc_stride":3}"#)
            XCTAssertEqual(single.status, 200, single.text)
            XCTAssertEqual(try JSONParser.parse(single.body)["data"]?[0]?["answers"], sharedData[i]["answers"], question)
        }
    }
}
