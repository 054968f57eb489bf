// MARK: - Splitting the text on added tokens, before pre-tokenization

/// A stretch of the text: plain text to pre-tokenize, or an added token (its id and the scalars it covers).
enum TextSegment: Equatable {
    case text(Range<Int>)
    case token(id: Int32, range: Range<Int>)
}

extension Vocabulary {
    /// Finds the added tokens in `scalars`, leftmost first and longest at one place (as HF's
    /// Aho-Corasick matcher), and returns the segments in order. Special tokens are looked for only when
    /// `allowSpecial`; non-special added tokens always are, as in HF.
    func segments(of scalars: UnsafeBufferPointer<Unicode.Scalar>, allowSpecial: Bool) -> [TextSegment] {
        let candidates = addedTokens.filter { allowSpecial || !$0.special }
        if candidates.isEmpty || scalars.isEmpty { return scalars.isEmpty ? [] : [.text(0..<scalars.count)] }
        let patterns = candidates.map { Array($0.content.unicodeScalars) }
        var segments: [TextSegment] = []
        var textStart = 0
        var index = 0
        while index < scalars.count {
            var matched: (token: AddedToken, length: Int)?
            for (candidate, pattern) in zip(candidates, patterns) where !pattern.isEmpty {
                // Candidates are sorted longest first, so the first match is the longest.
                if pattern[0] == scalars[index], index + pattern.count <= scalars.count,
                   (1..<pattern.count).allSatisfy({ pattern[$0] == scalars[index + $0] }) {
                    matched = (candidate, pattern.count)
                    break
                }
            }
            guard let (token, length) = matched else {
                index += 1
                continue
            }
            var start = index
            var end = index + length
            if token.leftStrip {
                while start > textStart, scalars[start - 1].properties.isWhitespace { start -= 1 }
            }
            if token.rightStrip {
                while end < scalars.count, scalars[end].properties.isWhitespace { end += 1 }
            }
            if start > textStart { segments.append(.text(textStart..<start)) }
            segments.append(.token(id: token.id, range: start..<end))
            textStart = end
            index = end
        }
        if textStart < scalars.count { segments.append(.text(textStart..<scalars.count)) }
        return segments
    }
}
