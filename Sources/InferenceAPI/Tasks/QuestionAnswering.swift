import Foundation
import Tokenizer

// Extractive QA as transformers' question-answering pipeline does it (`pipelines/question_answering.py`,
// last shipped in 4.57; transformers 5 removed it) for a GPT-2 tokenizer, which adds no special tokens:
// - each window is the question's tokens then a slice of the context's tokens (truncation "only_second"):
//   slices of `max_seq_len - question tokens`, each starting `that - doc_stride` after the previous;
// - per window, question tokens are masked (-10000), start and end logits softmaxed, token 0's scores
//   zeroed, spans scored by start × end with end - start < max_answer_len, the best `2 top_k + 10` kept;
// - a span widens to whole pre-tokenizer words (within the window) and is cut from the context; equal
//   answers (case-insensitively) from several windows add their scores; the best `top_k` are returned.

/// One answer: `start`/`end` are offsets in Unicode scalars of the context (Python string indices).
public struct ExtractedAnswer: Sendable, Equatable {
    public var score: Double
    public var start: Int
    public var end: Int
    public var answer: String
}

public struct QuestionAnsweringParameters: Sendable, Equatable {
    public var topK = 1
    public var maxAnswerLength = 15
    public var maxSequenceLength = 384
    public var docStride = 128
    public var handleImpossibleAnswer = false
    public init() {}
}

public enum QuestionAnsweringError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidParameter(String)
    /// The question leaves no room for the context in a window of `max_seq_len` tokens.
    case questionTooLong(questionTokens: Int, maxSequenceLength: Int)
    case emptyInput(String)

    public var description: String {
        switch self {
        case .invalidParameter(let message): message
        case .questionTooLong(let q, let m):
            "the question has \(q) tokens, which leaves no room for the context in max_seq_len \(m)"
        case .emptyInput(let field): "`\(field)` cannot be empty"
        }
    }
}

public enum QuestionAnswering {
    /// One model input: `questionTokens + context[contextRange]`.
    public struct Window: Sendable, Equatable {
        public var contextRange: Range<Int>
        public var tokens: [Int]
    }

    /// How `windows` will split a context, computed without building anything: context tokens per
    /// window, the step between window starts, and the number of windows. Throws what `windows` throws.
    public static func layout(questionTokens: Int, contextTokens: Int, parameters p: QuestionAnsweringParameters) throws
        -> (room: Int, step: Int, count: Int) {
        guard p.topK >= 1 else { throw QuestionAnsweringError.invalidParameter("top_k parameter should be >= 1 (got \(p.topK))") }
        guard p.maxAnswerLength >= 1 else {
            throw QuestionAnsweringError.invalidParameter("max_answer_len parameter should be >= 1 (got \(p.maxAnswerLength))")
        }
        guard p.docStride >= 0, p.docStride <= p.maxSequenceLength else {
            throw QuestionAnsweringError.invalidParameter("`doc_stride` (\(p.docStride)) is larger than `max_seq_len` (\(p.maxSequenceLength))")
        }
        guard questionTokens > 0 else { throw QuestionAnsweringError.emptyInput("question") }
        guard contextTokens > 0 else { throw QuestionAnsweringError.emptyInput("context") }
        let room = p.maxSequenceLength - questionTokens
        guard room > 0 else { throw QuestionAnsweringError.questionTooLong(questionTokens: questionTokens, maxSequenceLength: p.maxSequenceLength) }
        if contextTokens <= room { return (room, room, 1) }
        guard p.docStride < room else {
            throw QuestionAnsweringError.invalidParameter(
                "doc_stride \(p.docStride) must be smaller than the \(room) context tokens a window holds (max_seq_len - question tokens)")
        }
        // Windows start at 0, step, 2 step, ...; the last is the first that reaches the context's end.
        let step = room - p.docStride
        return (room, step, 1 + (contextTokens - room + step - 1) / step)
    }

    /// Splits the context into windows as the fast tokenizer's overflow does.
    public static func windows(question: [Int], context: [Int], parameters p: QuestionAnsweringParameters) throws -> [Window] {
        let (room, step, count) = try layout(questionTokens: question.count, contextTokens: context.count, parameters: p)
        return (0..<count).map { w in
            let start = w * step, end = min(start + room, context.count)
            return Window(contextRange: start..<end, tokens: question + context[start..<end])
        }
    }

    /// Answers from every window's logits (`startLogits[w]`, `endLogits[w]` have `windows[w].tokens.count` values).
    public static func answers(context: String, questionTokenCount: Int, contextTokens: [TokenSpan],
                               windows: [Window], startLogits: [[Float]], endLogits: [[Float]],
                               parameters p: QuestionAnsweringParameters) -> [ExtractedAnswer] {
        let scalars = Array(context.unicodeScalars)
        let wordStarts = PreTokenWords.starts(of: context)
        let wordOfToken = contextTokens.map { PreTokenWords.word(containing: $0.start, starts: wordStarts) }
        var minNullScore = 1_000_000.0
        var answers: [ExtractedAnswer] = []
        for (w, window) in windows.enumerated() {
            let length = window.tokens.count
            precondition(startLogits[w].count == length && endLogits[w].count == length, "one logit per window token")
            // Context tokens may answer, question tokens may not.
            let allowed = (0..<length).map { $0 >= questionTokenCount }
            var start = softmaxFloat32((0..<length).map { allowed[$0] ? startLogits[w][$0] : -10000 })
            var end = softmaxFloat32((0..<length).map { allowed[$0] ? endLogits[w][$0] : -10000 })
            if p.handleImpossibleAnswer { minNullScore = min(minNullScore, Double(start[0] * end[0])) }
            start[0] = 0; end[0] = 0

            for span in bestSpans(start: start, end: end, count: 2 * p.topK + 10, maxAnswerLength: p.maxAnswerLength)
            where allowed[span.start] && allowed[span.end] {
                // Token -> context token -> word; the word's extent within this window.
                let first = window.contextRange.lowerBound + span.start - questionTokenCount
                let last = window.contextRange.lowerBound + span.end - questionTokenCount
                let startWord = wordOfToken[first], endWord = wordOfToken[last]
                let inWindow = window.contextRange
                let startIndex = contextTokens[inWindow.first { wordOfToken[$0] == startWord }!].start
                let endIndex = contextTokens[inWindow.last { wordOfToken[$0] == endWord }!].end
                let text = slice(scalars, startIndex, endIndex)
                if let existing = answers.firstIndex(where: { $0.answer.lowercased() == text.lowercased() }) {
                    answers[existing].score += Double(span.score)
                } else {
                    answers.append(ExtractedAnswer(score: Double(span.score), start: startIndex, end: endIndex, answer: text))
                }
            }
        }
        if p.handleImpossibleAnswer { answers.append(ExtractedAnswer(score: minNullScore, start: 0, end: 0, answer: "")) }
        // Stable sort by score, best first (Python's sorted(..., reverse=True) keeps ties in order).
        let ranked = answers.enumerated().sorted { a, b in
            a.element.score != b.element.score ? a.element.score > b.element.score : a.offset < b.offset
        }
        return ranked.prefix(p.topK).map(\.element)
    }

    /// `decode_spans`: the `count` best (start, end) pairs by start[s] × end[e] with s <= e < s + maxAnswerLength.
    /// Spans outside that band score 0 in the pipeline and only appear when fewer positive spans exist.
    static func bestSpans(start: [Float], end: [Float], count: Int, maxAnswerLength: Int) -> [(start: Int, end: Int, score: Float)] {
        var candidates: [(start: Int, end: Int, score: Float)] = []
        for s in start.indices {
            for e in s..<min(s + maxAnswerLength, end.count) {
                let score = start[s] * end[e]
                if score > 0 { candidates.append((s, e, score)) }
            }
        }
        candidates.sort { $0.score != $1.score ? $0.score > $1.score : ($0.start, $0.end) < ($1.start, $1.end) }
        return Array(candidates.prefix(count))
    }

    static func slice(_ scalars: [Unicode.Scalar], _ start: Int, _ end: Int) -> String {
        let lower = min(max(start, 0), scalars.count), upper = min(max(end, lower), scalars.count)
        return String(String.UnicodeScalarView(scalars[lower..<upper]))
    }
}
