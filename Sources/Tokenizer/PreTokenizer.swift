// MARK: - GPT-2's pre-tokenization pattern, as a hand-written scanner

/// The character classes GPT-2's pattern distinguishes, exactly as the reference (Oniguruma inside HF
/// `tokenizers`) applies them: `\p{L}` (general categories L*), `\p{N}` (N*), `\s` (White_Space: U+0085,
/// U+00A0 and U+3000 are spaces; U+200B, U+FEFF and U+001C..U+001F are not), everything else.
///
/// The classes come from `CharacterClassTable.swift`, probed from HF for every code point, not from Swift's
/// `Unicode.Scalar.Properties`: the reference's Unicode tables are older than Swift's, and ~4,600 recently
/// assigned code points are letters to Swift but "other" to HF.
enum CharacterClass: UInt8 {
    case letter = 0, number = 1, whitespace = 2, other = 3

    /// Classes of U+0000..U+FFFF, one byte each (64 KB): the index is the scalar value, no search.
    private static let basicPlane: [CharacterClass] = {
        var table = [CharacterClass](repeating: .other, count: 0x10000)
        var index = 0
        while index < runStarts.count {
            let first = Int(runStarts[index])
            let next = index + 2 < runStarts.count ? Int(runStarts[index + 2]) : 0x110000
            let kind = CharacterClass(rawValue: UInt8(runStarts[index + 1]))!
            if first < 0x10000 {
                for value in first..<min(next, 0x10000) { table[value] = kind }
            }
            index += 2
        }
        return table
    }()

    @inline(__always)
    init(_ scalar: Unicode.Scalar) {
        let value = scalar.value
        if value < 0x10000 {
            self = Self.basicPlane[Int(value)]
        } else {
            self = Self.astralClass(value)
        }
    }

    /// Binary search for the run holding `value` (the last run start <= value).
    private static func astralClass(_ value: UInt32) -> CharacterClass {
        var low = 0
        var high = runStarts.count / 2 - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if runStarts[2 * middle] <= value { low = middle } else { high = middle - 1 }
        }
        return CharacterClass(rawValue: UInt8(runStarts[2 * low + 1])) ?? .other
    }
}

/// Splits text into the pieces GPT-2's pattern
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` finds, scanning left to right
/// with the alternatives tried in order, exactly as a backtracking regex engine would. Every scalar
/// belongs to some alternative, so the pieces tile the input.
struct PreTokenizer {
    /// Calls `body(start, end)` for each piece of `scalars[range]` (scalar indices, end exclusive). The
    /// range is scanned as if it were the whole text: the lookahead sees its end as end of input, as HF
    /// does for the text between two special tokens.
    static func forEachPiece(
        scalars: UnsafeBufferPointer<Unicode.Scalar>,
        classes: UnsafeBufferPointer<CharacterClass>,
        range: Range<Int>,
        _ body: (Int, Int) -> Void
    ) {
        let end = range.upperBound
        var index = range.lowerBound
        while index < end {
            let pieceEnd = Self.pieceEnd(from: index, end: end, scalars: scalars, classes: classes)
            body(index, pieceEnd)
            index = pieceEnd
        }
    }

    private static let apostrophe = Unicode.Scalar(UInt8(ascii: "'"))
    private static let space = Unicode.Scalar(UInt8(ascii: " "))

    /// End of the piece that starts at `start`.
    @inline(__always)
    static func pieceEnd(
        from start: Int, end: Int,
        scalars: UnsafeBufferPointer<Unicode.Scalar>,
        classes: UnsafeBufferPointer<CharacterClass>
    ) -> Int {
        let first = scalars[start]
        // 's|'t|'re|'ve|'m|'ll|'d: lower case only, as in the pattern (HF does not add a case-insensitive flag).
        if first == apostrophe, start + 1 < end {
            switch scalars[start + 1] {
            case "s", "t", "m", "d":
                return start + 2
            case "r", "v":
                if start + 2 < end, scalars[start + 2] == "e" { return start + 3 }
            case "l":
                if start + 2 < end, scalars[start + 2] == "l" { return start + 3 }
            default:
                break
            }
        }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: one optional U+0020, then a run of one class.
        var runStart = start
        if first == space, start + 1 < end, classes[start + 1] != .whitespace {
            runStart = start + 1
        }
        let runClass = classes[runStart]
        if runClass != .whitespace {
            var index = runStart + 1
            while index < end, classes[index] == runClass { index += 1 }
            return index
        }
        // `\s+(?!\S)`: the whitespace run, less its last scalar when a non-space follows (that scalar then
        // starts the next piece, e.g. the space of " word"); `\s+` when that would leave nothing.
        var index = start + 1
        while index < end, classes[index] == .whitespace { index += 1 }
        if index == end || index - start == 1 { return index }
        return index - 1
    }
}
