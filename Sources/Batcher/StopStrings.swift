// MARK: - Stop strings on the decoded text
// A stop string can span tokens ("\n\n" from two "\n" tokens) and can start in the middle of a token's
// text, so matching runs on the decoded text, not on ids. Text that could be the beginning of a stop
// string is held back until the next pieces show whether it is one; the stop string itself and
// everything after it are cut. Matching is on Unicode scalars (Python's `str` semantics), not on
// Swift's grapheme clusters, so that a stop string of a combining mark still matches.

struct StopStringMatcher {
    private let stops: [[Unicode.Scalar]]
    /// Text not yet released: the longest suffix of everything seen that is a proper prefix of a stop.
    private var held: [Unicode.Scalar] = []
    private(set) var stopped = false

    init(stops: [String]) {
        self.stops = stops.map { Array($0.unicodeScalars) }.filter { !$0.isEmpty }
    }

    /// What to release after `piece`, and whether a stop string was found (then the matcher is done).
    mutating func append(_ piece: String) -> (text: String, stopped: Bool) {
        precondition(!stopped, "text appended after a stop string matched")
        guard !stops.isEmpty else { return (piece, false) }
        held.append(contentsOf: piece.unicodeScalars)
        if let cut = earliestMatch() {
            stopped = true
            let released = string(held[..<cut])
            held = []
            return (released, true)
        }
        let keep = longestSuffixBeginningAStop()
        let released = string(held[..<(held.count - keep)])
        held.removeFirst(held.count - keep)
        return (released, false)
    }

    /// The text held back, released when the sequence ends for another reason.
    mutating func finish() -> String {
        defer { held = [] }
        return string(held[...])
    }

    // MARK: - Matching

    /// The start of the earliest occurrence of any stop string in `held`.
    private func earliestMatch() -> Int? {
        var earliest: Int?
        for stop in stops where stop.count <= held.count {
            let lastStart = earliest.map { min($0 - 1, held.count - stop.count) } ?? held.count - stop.count
            guard lastStart >= 0 else { continue }
            for start in 0...lastStart where held[start] == stop[0] {
                if held[start..<(start + stop.count)].elementsEqual(stop) { earliest = start; break }
            }
        }
        return earliest
    }

    /// Length of the longest suffix of `held` that is a proper prefix of some stop string.
    private func longestSuffixBeginningAStop() -> Int {
        var longest = 0
        for stop in stops {
            let upper = min(stop.count - 1, held.count)
            guard upper > longest else { continue }
            for length in stride(from: upper, to: longest, by: -1)
            where held[(held.count - length)...].elementsEqual(stop[..<length]) {
                longest = length
                break
            }
        }
        return longest
    }

    private func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}
