import Foundation
import HTTPServer

// MARK: - libFuzzer entry point
// Built with `swift build -c release --sanitize fuzzer --sanitize address --product HTTP2Fuzzer`:
// libFuzzer supplies `main` and calls this for every input. The input is what a client sends
// after the connection preface (prepended here, so that mutations explore frames, not the magic),
// fed in pieces whose sizes the input's first byte seeds. Besides "no crash, no memory error",
// it checks that no request handed over exceeds the limits.

private let maxBodyBytes = 512
private let maxHeaderCount = 8

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    checkEngine(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

private let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

func checkEngine(_ input: [UInt8]) {
    let driver = HTTP2EngineDriver(maxConcurrentStreams: 4, maxHeaderListBytes: 512, maxHeaderCount: maxHeaderCount, maxBodyBytes: maxBodyBytes)
    let bytes = preface + input
    var seed = UInt64(input.first ?? 0) | 1
    var index = 0
    while index < bytes.count {
        seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        let length = min(bytes.count - index, 1 + Int(seed >> 54))
        guard driver.feed(Array(bytes[index..<index + length])) else { break }
        index += length
    }
    for request in driver.requests {
        if request.bodyBytes > maxBodyBytes { fail("a request body of \(request.bodyBytes) bytes passed the \(maxBodyBytes)-byte limit") }
        if request.headerCount > maxHeaderCount { fail("\(request.headerCount) header fields passed the limit of \(maxHeaderCount)") }
    }
}

private func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    abort()
}

// MARK: - Replay entry point
// A normal build (no fuzzer runtime) links this as `main`: it replays the files given as
// arguments (a crash input, the seed corpus) through the same checks.

@_cdecl("HTTP2Fuzzer_main")
public func replayMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    for index in 1..<Int(argc) {
        let path = String(cString: argv[index]!)
        guard let contents = FileManager.default.contents(atPath: path) else {
            fail("cannot open \(path)")
        }
        checkEngine(Array(contents))
    }
    print("replayed \(argc - 1) inputs: no request passed the limits")
    return 0
}
