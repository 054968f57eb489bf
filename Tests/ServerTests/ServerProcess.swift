import Foundation
import XCTest

// MARK: - The real executable, run as a child process

/// `gptneo-server` built beside the test bundle, started on a free port with its stderr in a file, driven over
/// loopback with curl (installed by scripts/install-deps.sh). For the behaviour only a whole process
/// shows: signals, reloading files, what reaches the log, the exit status.
final class ServerProcess {
    static var executable: URL {
        Bundle.main.executableURL!.deletingLastPathComponent().appendingPathComponent("gptneo-server")
    }

    /// The tiny test checkpoint: fast to load, and independent of which model is the bundled default.
    static let tinyModel = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny-gpt-neo").path

    let process = Process()
    let logFile: URL
    private(set) var port = 0

    /// Starts the server; `waitUntilReady` waits for the model.
    init(arguments: [String], environment: [String: String] = [:]) throws {
        logFile = FileManager.default.temporaryDirectory.appendingPathComponent("gptneo-server-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        process.executableURL = Self.executable
        port = try Self.freePort()
        process.arguments = ["--port", String(port), "--log-format", "text", "--model", Self.tinyModel] + arguments
        var inherited = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("GPTNEO_") }
        inherited.merge(environment) { $1 }
        process.environment = inherited
        process.standardError = try FileHandle(forWritingTo: logFile)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
    }

    /// A port nothing listens on now (the log level may hide the line naming a port picked by the server).
    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw POSIXError(.EADDRINUSE) }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        try? FileManager.default.removeItem(at: logFile)
    }

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    func waitUntilReady(timeout: Double = 60, file: StaticString = #filePath, line: UInt = #line) throws {
        try waitFor("the server to become ready", timeout: timeout, file: file, line: line) { self.request("/readyz").status == 200 }
    }

    @discardableResult
    func waitForLog<Output>(_ pattern: Regex<Output>, timeout: Double, file: StaticString = #filePath, line: UInt = #line) throws -> Output {
        var found: Output?
        try waitFor("a log line matching \(pattern)", timeout: timeout, file: file, line: line) {
            found = self.log.firstMatch(of: pattern)?.output
            return found != nil
        }
        return found!
    }

    func waitFor(_ what: String, timeout: Double, file: StaticString = #filePath, line: UInt = #line, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return }
            if !process.isRunning { break }
            usleep(50_000)
        }
        if condition() { return }
        XCTFail("timed out waiting for \(what); server log:\n\(log)", file: file, line: line)
        throw CancellationError()
    }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// The exit status, or nil if the process is still running after `timeout`.
    func waitForExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    // MARK: HTTP through curl

    struct Reply { var status: Int; var body: String }

    func request(_ path: String, method: String = "GET", key: String? = nil, json: String? = nil) -> Reply {
        var arguments = ["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, "--max-time", "30", "http://127.0.0.1:\(port)\(path)"]
        if let key { arguments += ["-H", "Authorization: Bearer \(key)"] }
        if let json { arguments += ["-H", "Content-Type: application/json", "-d", json] }
        let output = Self.run("/usr/bin/curl", arguments)
        let status = output.split(separator: "\n").last.flatMap { Int($0) } ?? 0
        return Reply(status: status, body: String(output.dropLast(String(status).count + 1)))
    }

    /// A streamed completion read by curl into `output`, asked to read at `bytesPerSecond` (curl 7.88
    /// holds a stream back little: a stream stays in flight about as long as its generation).
    func startSlowStream(json: String, bytesPerSecond: Int, output: URL) throws -> Process {
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-sN", "--limit-rate", "\(bytesPerSecond)", "--max-time", "120", "-H", "Content-Type: application/json",
                          "-d", json, "-o", output.path, "http://127.0.0.1:\(port)/v1/completions"]
        try curl.run()
        return curl
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) -> String {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = arguments
        if let environment { child.environment = environment }
        let pipe = Pipe()
        child.standardOutput = pipe
        child.standardError = pipe
        guard (try? child.run()) != nil else { return "" }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        child.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
