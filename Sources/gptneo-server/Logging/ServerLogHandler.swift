import Foundation
import InferenceAPI
import Logging

// MARK: - State shared by every logger of the process

/// What can change while the server runs: the level (SIGHUP) and the secrets to redact (key rotation).
/// Every handler reads it on each call, so a change applies to loggers created before it.
final class LogControl: @unchecked Sendable {
    enum Format: String, Sendable { case text, json }

    private let lock = NSLock()
    private var _level: Logger.Level
    private var _secrets: [String] = []
    let format: Format
    private let write: @Sendable (String) -> Void

    /// `write` receives whole lines (newline included); the default writes them to stderr.
    init(level: Logger.Level, format: Format, write: @escaping @Sendable (String) -> Void = LogControl.writeToStandardError) {
        self._level = level
        self.format = format
        self.write = write
    }

    var level: Logger.Level {
        get { lock.withLock { _level } }
        set { lock.withLock { _level = newValue } }
    }

    /// Strings that must never reach the log (API keys): replaced wherever they appear.
    func setSecrets(_ secrets: [String]) {
        // Longest first, so a key containing another is replaced whole.
        let sorted = secrets.filter { !$0.isEmpty }.sorted { $0.count > $1.count }
        lock.withLock { _secrets = sorted }
    }

    func emit(_ line: String) {
        let secrets = lock.withLock { _secrets }
        var line = line
        for secret in secrets where line.contains(secret) {
            line = line.replacingOccurrences(of: secret, with: SettingValue.redacted)
        }
        write(line)
    }

    private static let standardErrorLock = NSLock()
    @Sendable static func writeToStandardError(_ line: String) {
        standardErrorLock.withLock {
            var line = line
            line.withUTF8 { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = Glibc.write(2, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 { if errno == EINTR { continue } else { return } }
                    offset += written
                }
            }
        }
    }
}

// MARK: - The handler

/// Text: `2026-01-01T12:00:00.000Z info gptneo-server: message key=value ...`.
/// JSON: one object per line: `time`, `level`, `logger`, `message`, then the metadata (request id,
/// the access log's method, path, status, bytes, duration_ms) as top-level fields.
struct ServerLogHandler: LogHandler {
    let label: String
    let control: LogControl
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    var logLevel: Logger.Level {
        get { control.level }
        set { control.level = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// `now` as ISO 8601 in UTC with milliseconds (truncated), "2026-12-01T13:32:13.906Z". Formatted by
    /// hand: Foundation's ISO 8601 style looks up the current time zone through ICU, which maps 3 MB of
    /// ICU code and tables into a process that has no other use for them.
    static func utcTimestamp(_ now: timespec = currentTime()) -> String {
        var seconds = now.tv_sec, fields = tm()
        gmtime_r(&seconds, &fields)
        func digits(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return digits(fields.tm_year + 1900, 4) + "-" + digits(fields.tm_mon + 1, 2) + "-" + digits(fields.tm_mday, 2) + "T"
            + digits(fields.tm_hour, 2) + ":" + digits(fields.tm_min, 2) + ":" + digits(fields.tm_sec, 2) + "."
            + digits(Int32(now.tv_nsec / 1_000_000), 3) + "Z"
    }

    static func currentTime() -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return now
    }

    func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let extra = event.metadata { all.merge(extra) { $1 } }
        let time = Self.utcTimestamp()
        switch control.format {
        case .text:
            var line = "\(time) \(event.level) \(label): \(event.message)"
            for (key, value) in all.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
            control.emit(line + "\n")
        case .json:
            var object: JSONObject = ["time": .string(time), "level": .string(event.level.rawValue),
                                      "logger": .string(label), "message": .string("\(event.message)")]
            for (key, value) in all.sorted(by: { $0.key < $1.key }) where object[key] == nil { object[key] = Self.json(value) }
            control.emit(JSONValue.object(object).encodedString + "\n")
        }
    }

    private static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text): .string(text)
        case .stringConvertible(let convertible): .string(convertible.description)
        case .array(let items): .array(items.map(json))
        case .dictionary(let dictionary):
            .object(dictionary.sorted { $0.key < $1.key }.reduce(into: JSONObject()) { $0[$1.key] = json($1.value) })
        }
    }
}
