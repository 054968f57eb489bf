import Foundation

// MARK: - A lock-protected value

/// A value behind a lock, for state shared by concurrent request handlers.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock(); defer { lock.unlock() }
        return try body(&value)
    }
}

// MARK: - Prometheus primitives

/// Label values in a fixed order (the family declares the names).
typealias LabelValues = [String]

/// A counter family: monotonically increasing totals; the name must end in `_total`.
final class CounterFamily: Sendable {
    let name: String, help: String, labelNames: [String]
    private let values = Locked<[LabelValues: Double]>([:])
    init(name: String, help: String, labelNames: [String] = []) {
        precondition(name.hasSuffix("_total"), "Prometheus counters end in _total")
        self.name = name; self.help = help; self.labelNames = labelNames
    }
    func increment(_ labels: LabelValues = [], by amount: Double = 1) {
        precondition(labels.count == labelNames.count && amount >= 0)
        values.withLock { $0[labels, default: 0] += amount }
    }
    func value(_ labels: LabelValues = []) -> Double { values.withLock { $0[labels] ?? 0 } }

    func render(into out: inout String) {
        out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
        let snapshot = values.withLock { $0 }
        if snapshot.isEmpty && labelNames.isEmpty { out += "\(name) 0\n" }
        for (labels, value) in snapshot.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            out += "\(name)\(renderLabels(labelNames, labels)) \(formatSample(value))\n"
        }
    }
}

/// A histogram family with cumulative `le` buckets, `_sum` and `_count`.
final class HistogramFamily: Sendable {
    struct Series { var buckets: [UInt64]; var sum = 0.0; var count: UInt64 = 0 }
    let name: String, help: String, labelNames: [String], bounds: [Double]
    private let series = Locked<[LabelValues: Series]>([:])
    init(name: String, help: String, labelNames: [String] = [], bounds: [Double]) {
        precondition(bounds == bounds.sorted() && !bounds.isEmpty)
        self.name = name; self.help = help; self.labelNames = labelNames; self.bounds = bounds
    }
    func observe(_ value: Double, _ labels: LabelValues = []) {
        precondition(labels.count == labelNames.count)
        series.withLock { all in
            var s = all[labels] ?? Series(buckets: Array(repeating: 0, count: bounds.count))
            for (i, bound) in bounds.enumerated() where value <= bound { s.buckets[i] += 1 }
            s.sum += value
            s.count += 1
            all[labels] = s
        }
    }
    func count(_ labels: LabelValues = []) -> UInt64 { series.withLock { $0[labels]?.count ?? 0 } }

    func render(into out: inout String) {
        out += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        var snapshot = series.withLock { $0 }
        if snapshot.isEmpty && labelNames.isEmpty { snapshot[[]] = Series(buckets: Array(repeating: 0, count: bounds.count)) }
        for (labels, s) in snapshot.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            for (i, bound) in bounds.enumerated() {
                out += "\(name)_bucket\(renderLabels(labelNames + ["le"], labels + [formatSample(bound)])) \(s.buckets[i])\n"
            }
            out += "\(name)_bucket\(renderLabels(labelNames + ["le"], labels + ["+Inf"])) \(s.count)\n"
            out += "\(name)_sum\(renderLabels(labelNames, labels)) \(formatSample(s.sum))\n"
            out += "\(name)_count\(renderLabels(labelNames, labels)) \(s.count)\n"
        }
    }
}

/// A gauge read at scrape time.
struct GaugeSample {
    var name: String, help: String, value: Double
    var labels: KeyValuePairs<String, String> = [:]
    func render(into out: inout String) {
        let labelText = renderLabels(labels.map(\.key), labels.map(\.value))
        out += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n\(name)\(labelText) \(formatSample(value))\n"
    }
}

// MARK: - Text format helpers

private func renderLabels(_ names: [String], _ values: [String]) -> String {
    guard !names.isEmpty else { return "" }
    let pairs = zip(names, values).map { name, value in
        let escaped = value.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
        return "\(name)=\"\(escaped)\""
    }
    return "{" + pairs.joined(separator: ",") + "}"
}

func formatSample(_ value: Double) -> String {
    if value.isNaN { return "NaN" }
    if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
    if value.rounded() == value && abs(value) < 1e15 { return String(Int64(value)) }
    return String(value)
}
