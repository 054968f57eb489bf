// MARK: - Splitting the text on added tokens, before pre-tokenization

/// A stretch of the text: plain text to pre-tokenize, or an added token (its id and the scalars it covers).
enum TextSegment: Equatable {
    case text(Range<Int>)
    case token(id: Int32, range: Range<Int>)
}

extension Vocabulary {
    /// Finds the added tokens in `scalars` as HF's `AddedVocabulary` does: first the tokens with
    /// `normalized: false` over the whole text, then those with `normalized: true` in the text between
    /// (there is no normalizer, so both match the raw text). Each pass takes matches leftmost first and
    /// longest at one place (HF's Aho-Corasick, LeftmostLongest) and resumes after each match, even one it
    /// then discards: a `single_word` token touching a word character, or a special token when
    /// `allowSpecial` is false (HF's `encode_special_tokens`), stays plain text along with all it covered.
    func segments(of scalars: UnsafeBufferPointer<Unicode.Scalar>, allowSpecial: Bool) -> [TextSegment] {
        if scalars.isEmpty { return [] }
        var segments: [TextSegment] = [.text(0..<scalars.count)]
        for normalized in [false, true] {
            let candidates = addedTokens.filter { $0.normalized == normalized && !$0.content.isEmpty }
            if candidates.isEmpty { continue }
            segments = segments.flatMap { segment -> [TextSegment] in
                guard case let .text(range) = segment else { return [segment] }
                return split(scalars, range, candidates, allowSpecial: allowSpecial)
            }
        }
        return segments
    }

    /// One pass of `segments` over `range`, which plays the role of the whole sentence (HF's
    /// `find_matches`): word and whitespace checks stop at its ends.
    private func split(
        _ scalars: UnsafeBufferPointer<Unicode.Scalar>, _ range: Range<Int>, _ candidates: [AddedToken],
        allowSpecial: Bool
    ) -> [TextSegment] {
        var segments: [TextSegment] = []
        var textStart = range.lowerBound
        var index = range.lowerBound
        while index < range.upperBound {
            // Candidates are sorted longest first, so the first that matches here is the longest.
            guard let token = candidates.first(where: { matches($0.scalars, scalars, at: index, end: range.upperBound) }) else {
                index += 1
                continue
            }
            var start = index
            var end = index + token.scalars.count
            index = end
            if token.special && !allowSpecial { continue }
            if token.singleWord {
                let wordBefore = start > range.lowerBound && isWordCharacter(scalars[start - 1])
                let wordAfter = end < range.upperBound && isWordCharacter(scalars[end])
                if wordBefore || wordAfter { continue }
            }
            if token.leftStrip {
                while start > textStart, scalars[start - 1].properties.isWhitespace { start -= 1 }
            }
            if token.rightStrip {
                while end < range.upperBound, scalars[end].properties.isWhitespace { end += 1 }
                index = end
            }
            if start > textStart { segments.append(.text(textStart..<start)) }
            segments.append(.token(id: token.id, range: start..<end))
            textStart = end
        }
        if textStart < range.upperBound { segments.append(.text(textStart..<range.upperBound)) }
        return segments
    }

    @inline(__always)
    private func matches(
        _ pattern: [Unicode.Scalar], _ scalars: UnsafeBufferPointer<Unicode.Scalar>, at index: Int, end: Int
    ) -> Bool {
        guard pattern[0] == scalars[index], index + pattern.count <= end else { return false }
        for offset in 1..<pattern.count where pattern[offset] != scalars[index + offset] { return false }
        return true
    }

    /// Rust regex's Unicode `\w`, which HF's `single_word` check uses: alphabetic, marks, decimal digits,
    /// connector punctuation (`_`) and the joiners U+200C/U+200D.
    private func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        let properties = scalar.properties
        if properties.isAlphabetic || properties.isJoinControl { return true }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }
}
