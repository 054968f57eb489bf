import Foundation

// The "words" of a GPT-2 encoding are the pieces of its pre-tokenizer, the regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (tried left to right at each position). The QA pipeline widens an answer to whole words with them
// (`token_to_word` / `word_to_chars`), so we need the same split; the tokenizer does not expose it.

enum PreTokenWords {
    /// Start offsets (in Unicode scalars) of each pre-token of `text`, in order; pieces are contiguous.
    static func starts(of text: String) -> [Int] {
        let s = Array(text.unicodeScalars)
        var starts: [Int] = []
        var i = 0
        while i < s.count {
            starts.append(i)
            i += pieceLength(s, at: i)
        }
        return starts
    }

    /// Index of the pre-token containing scalar offset `offset` (`starts` sorted ascending).
    static func word(containing offset: Int, starts: [Int]) -> Int {
        var low = 0, high = starts.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if starts[mid] <= offset { low = mid } else { high = mid - 1 }
        }
        return low
    }

    private static func isLetter(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: true
        default: false
        }
    }

    private static func isNumber(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: true
        default: false
        }
    }

    private static func isSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace }

    private static func isOther(_ c: Unicode.Scalar) -> Bool { !isSpace(c) && !isLetter(c) && !isNumber(c) }

    /// Length of the piece the regex matches at `i` (always >= 1).
    private static func pieceLength(_ s: [Unicode.Scalar], at i: Int) -> Int {
        let n = s.count
        // Contractions.
        if s[i] == "'" && i + 1 < n {
            let a = s[i + 1]
            if a == "s" || a == "t" || a == "m" || a == "d" { return 2 }
            if i + 2 < n {
                let b = s[i + 2]
                if (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") { return 3 }
            }
        }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`.
        let space = s[i] == " " ? 1 : 0
        for klass in [isLetter, isNumber, isOther] as [(Unicode.Scalar) -> Bool] {
            var j = i + space
            while j < n && klass(s[j]) { j += 1 }
            if j > i + space { return j - i }
        }
        // `\s+(?!\S)` then `\s+`: a run of whitespace leaves its last character to the next piece when a
        // non-space follows (unless the run is a single character).
        var j = i
        while j < n && isSpace(s[j]) { j += 1 }
        if j > i {
            if j == n { return j - i }
            return j - i > 1 ? j - i - 1 : 1
        }
        return 1  // unreachable: every scalar is a letter, number, space or other
    }
}
