// MARK: - GPT-2's pre-tokenization pattern, as a hand-written scanner

/// The character classes GPT-2's pattern distinguishes, as the reference (Oniguruma in HF `tokenizers`)
/// defines them: `\p{L}` is the general categories L*, `\p{N}` is N*, `\s` is the Unicode White_Space
/// property (so U+0085, U+00A0 and U+3000 are spaces; U+200B, U+FEFF and U+001C..U+001F are not).
enum CharacterClass: UInt8 {
    case letter, number, whitespace, other

    /// ASCII classes by table, so the common case costs one load.
    private static let asciiClasses: [CharacterClass] = (0..<128).map { value in
        switch UInt8(value) {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): return .letter
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        case 0x09...0x0D, 0x20: return .whitespace
        default: return .other
        }
    }

    init(_ scalar: Unicode.Scalar) {
        if scalar.value < 128 {
            self = Self.asciiClasses[Int(scalar.value)]
            return
        }
        let properties = scalar.properties
        if properties.isWhitespace {
            self = .whitespace
            return
        }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            self = .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            self = .number
        default:
            self = .other
        }
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
