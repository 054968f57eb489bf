import Batcher
import Foundation
import XCTest
@testable import InferenceAPI

/// `generation_config.json` supplies the sampling values a request leaves out.
final class SamplingDefaultsTests: XCTestCase {
    func testReadsSamplingKeysAndIgnoresTheRest() throws {
        let json = #"{"bos_token_id": 50256, "do_sample": true, "temperature": 0.8, "top_p": 0.95, "top_k": 0, "repetition_penalty": 1.1, "max_length": 20}"#
        let defaults = try SamplingDefaults.decode(Data(json.utf8))
        XCTAssertEqual(defaults.temperature, 0.8)
        XCTAssertEqual(defaults.topP, 0.95)
        XCTAssertEqual(defaults.topK, 0)
        XCTAssertEqual(defaults.repetitionPenalty, 1.1)
    }

    func testAbsentKeysAndAbsentFileKeepOpenAIDefaults() throws {
        XCTAssertEqual(try SamplingDefaults.decode(Data(#"{"eos_token_id": 50256}"#.utf8)), SamplingDefaults())
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("no-generation-config-\(UUID().uuidString)")
        XCTAssertEqual(try SamplingDefaults.load(directory: empty), SamplingDefaults())
        XCTAssertEqual(SamplingDefaults().temperature, 1)
        XCTAssertEqual(SamplingDefaults().topP, 1)
    }

    func testValuesARequestCouldNotSendAreErrorsNamingTheKey() {
        for (json, key) in [(#"{"temperature": 3}"#, "temperature"), (#"{"top_p": 0}"#, "top_p"), (#"{"top_k": -2}"#, "top_k"),
                            (#"{"repetition_penalty": 0}"#, "repetition_penalty"), (#"{"temperature": "hot"}"#, "generation config")] {
            XCTAssertThrowsError(try SamplingDefaults.decode(Data(json.utf8), path: "m/generation_config.json"), json) { error in
                XCTAssertTrue("\(error)".hasPrefix("m/generation_config.json: "), "\(error)")
                XCTAssertTrue("\(error)".contains(key), "\(error)")
            }
        }
    }

    func testRequestsWithoutSamplingFieldsUseTheModelDefaults() async throws {
        var defaults = SamplingDefaults()
        defaults.temperature = 0.8
        defaults.topP = 0.95
        defaults.topK = 40
        defaults.repetitionPenalty = 1.2
        let backend = FakeBackend()
        let service = try await InferenceService.makeReady(backend: backend, samplingDefaults: defaults)

        let answer = await service.complete(#"{"prompt":"x","temperature":null}"#)
        XCTAssertEqual(answer.status, 200, answer.text)
        let p = try XCTUnwrap(backend.submitted.first?.parameters)
        XCTAssertEqual([p.temperature, p.topP, p.repetitionPenalty], [0.8, 0.95, 1.2])
        XCTAssertEqual(p.topK, 40)

        backend.clearSubmitted()
        let explicit = await service.complete(#"{"prompt":"x","temperature":0,"top_p":0.5,"top_k":-1,"repetition_penalty":1}"#)
        XCTAssertEqual(explicit.status, 200, explicit.text)
        let q = try XCTUnwrap(backend.submitted.first?.parameters)
        XCTAssertEqual([q.temperature, q.topP, q.repetitionPenalty], [0, 0.5, 1])
        XCTAssertEqual(q.topK, 0)
    }
}
