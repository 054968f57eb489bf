import GPTNeo

// MARK: - What one step runs, and what its outputs mean
// A prompt is prefilled in whole chunks of C tokens (chunk k is prompt[k*C ..< (k+1)*C]), one per step
// while other streams decode, several together when none does. Every row is computed by the engine
// independently of its neighbours and of how its prompt was split (both tested bit for bit in
// GPTNeoTests' BatchInvarianceTests), so the logits a request sees, and therefore its tokens, are the
// same whatever else runs. Sampling uses only the request's own state.
//
// No padding: the engine packs the items' rows back to back, so prompts of different lengths cost
// only their own rows and there is nothing to gain from grouping similar lengths. What does matter is
// the per-step prefill budget (`maxPrefillTokensPerStep`): it keeps a burst of long prompts from
// stretching the steps of the streams already decoding.

struct StepPlan<Cache: AnyObject> {
    enum Slot {
        case prefill(start: Int, count: Int)
        case decode(choice: ChoiceState<Cache>)
    }
    var items: [RunnerItem<Cache>] = []
    var slots: [(job: ActiveJob<Cache>, slot: Slot)] = []
}

extension Scheduler {
    typealias Cache = Runner.Cache

    /// One row per running choice, then one chunk per prefilling job in admission order while the
    /// prefill budget lasts (the first chunk always runs, so nothing starves); with no running choice,
    /// as many whole chunks per job as the budget holds.
    func planStep(_ jobs: [ActiveJob<Cache>]) -> StepPlan<Cache> {
        var plan = StepPlan<Cache>()
        for job in jobs where !job.isDone && !job.isPrefilling {
            for choice in job.choices {
                guard let cache = choice.cache, let token = choice.pendingInput else { continue }
                plan.items.append(RunnerItem(cache: cache, tokens: [token], hiddenRows: .none, logitRows: .last,
                                             argmaxOnly: job.parameters?.logprobs == nil && choice.sampler.isPlainArgmax))
                plan.slots.append((job, .decode(choice: choice)))
            }
        }
        let (chunk, budget) = (configuration.prefillChunkTokens, configuration.maxPrefillTokensPerStep)
        // With no stream decoding there is no one a longer step would hold up: a prompt then takes as
        // many whole chunks as the budget leaves, and its rows share one pass over the weights.
        let chunksPerJob = plan.items.isEmpty ? budget / chunk : 1
        var prefillTokens = 0
        for job in jobs where !job.isDone && job.isPrefilling {
            guard let cache = job.prefillCache else { continue }
            let start = job.prefilledTokens
            let remaining = job.prompt.count - start
            guard prefillTokens == 0 || prefillTokens + min(chunk, remaining) <= budget else { break }
            let chunks = max(1, min(chunksPerJob, (budget - prefillTokens) / chunk))
            let count = min(chunks * chunk, remaining)
            prefillTokens += count
            let isLast = start + count == job.prompt.count
            var hiddenRows = OutputRows.none
            var logitRows = OutputRows.none
            if let parameters = job.parameters {
                if parameters.echo && parameters.logprobs != nil {
                    logitRows = .all
                } else if isLast && parameters.maxTokens > 0 {
                    logitRows = .last
                }
            } else {
                hiddenRows = .all
            }
            plan.items.append(RunnerItem(cache: cache, tokens: Array(job.prompt[start..<(start + count)]),
                                         hiddenRows: hiddenRows, logitRows: logitRows))
            plan.slots.append((job, .prefill(start: start, count: count)))
        }
        return plan
    }

    /// Draws the next token of every decode row, spread over the runner's threads: a draw is a pure
    /// function of the row and of the choice's own sampler and history, so which thread makes it (and
    /// what else is in the step) changes nothing. Everything with an order — text, stop strings,
    /// events — stays with `consume`, on the loop thread.
    func sampleDecodeRows(_ outputs: [RunnerOutput], of plan: StepPlan<Cache>) -> [SampledToken?] {
        var decodeRows: [Int] = []
        for (index, entry) in plan.slots.enumerated() {
            if case let .decode(choice) = entry.slot, !entry.job.isDone, !choice.isFinished, entry.job.parameters != nil {
                decodeRows.append(index)
            }
        }
        var sampled = [SampledToken?](repeating: nil, count: outputs.count)
        let workers = min(samplingScratch.count, decodeRows.count)
        guard workers > 0 else { return sampled }
        let vocabulary = limits.vocabularySize
        sampled.withUnsafeMutableBufferPointer { results in
            runner.parallelFor(workers) { worker in
                for position in stride(from: worker, to: decodeRows.count, by: workers) {
                    let index = decodeRows[position]
                    let (job, slot) = plan.slots[index]
                    guard case let .decode(choice) = slot, let parameters = job.parameters else { continue }
                    // What `sample` would draw from the full row (`argmaxOnly` was asked for this choice).
                    if let token = outputs[index].argmax.first {
                        results[index] = SampledToken(token: token, logprob: nil)
                        continue
                    }
                    results[index] = outputs[index].logits.withUnsafeBufferPointer { logits in
                        let row = UnsafeBufferPointer(rebasing: logits[0..<vocabulary])
                        let token = choice.sampler.sample(logits: row, history: choice.history, scratch: samplingScratch[worker])
                        return SampledToken(token: token, logprob: parameters.logprobs.map {
                            tokenLogprob(tokenID: token, logits: row, topCount: $0)
                        })
                    }
                }
            }
        }
        return sampled
    }

    /// Applies one item's output to its job; `sampled` is the decode row's draw from `sampleDecodeRows`.
    func consume(_ output: RunnerOutput, of entry: (job: ActiveJob<Cache>, slot: StepPlan<Cache>.Slot), sampled: SampledToken?) {
        let job = entry.job
        guard !job.isDone else { return }
        let vocabulary = limits.vocabularySize
        switch entry.slot {
        case let .decode(choice):
            choice.pendingInput = nil
            if let sampled { accept(sampled, for: choice, of: job) }
        case let .prefill(start, count):
            job.prefilledTokens = start + count
            guard let parameters = job.parameters else {
                job.hidden.append(contentsOf: output.hidden)
                if !job.isPrefilling { job.end(.success(())) }
                return
            }
            let allRows = parameters.echo && parameters.logprobs != nil
            if allRows { scorePrompt(job, start: start, count: count, logits: output.logits, top: parameters.logprobs ?? 0) }
            guard !job.isPrefilling else { return }
            let lastRow = allRows ? count - 1 : 0
            output.logits.withUnsafeBufferPointer { logits in
                let row = parameters.maxTokens > 0
                    ? UnsafeBufferPointer(rebasing: logits[(lastRow * vocabulary)..<((lastRow + 1) * vocabulary)]) : nil
                startChoices(job, parameters: parameters, lastLogits: row)
            }
        }
        if job.choices.allSatisfy(\.isFinished) && !job.isPrefilling && !job.isDone {
            job.send(.usage(promptTokens: job.prompt.count, completionTokens: job.completionTokens))
            job.end(.success(()))
        }
    }

    /// Echo logprobs: row r of a chunk starting at `start` scores prompt token start + r + 1. Rows are
    /// independent (each a pure function of its logits), so they are spread over the runner's threads.
    private func scorePrompt(_ job: ActiveJob<Cache>, start: Int, count: Int, logits: [Float], top: Int) {
        let vocabulary = limits.vocabularySize
        if start == 0 { job.promptLogprobs = [nil] }
        let rows = max(0, min(count, job.prompt.count - start - 1))
        var scored = [TokenLogprob?](repeating: nil, count: rows)
        let prompt = job.prompt
        logits.withUnsafeBufferPointer { logits in
            scored.withUnsafeMutableBufferPointer { scored in
                runner.parallelFor(rows) { row in
                    let rowLogits = UnsafeBufferPointer(rebasing: logits[(row * vocabulary)..<((row + 1) * vocabulary)])
                    scored[row] = tokenLogprob(tokenID: prompt[start + row + 1], logits: rowLogits, topCount: top)
                }
            }
        }
        job.promptLogprobs.append(contentsOf: scored)
    }

    /// The prompt is in the cache: report it (echo), then give each choice its cache and first token.
    private func startChoices(_ job: ActiveJob<Cache>, parameters: GenerationParameters, lastLogits: UnsafeBufferPointer<Float>?) {
        if parameters.echo {
            job.send(.prompt(tokens: job.prompt, logprobs: parameters.logprobs == nil ? [] : job.promptLogprobs))
        }
        guard let cache = job.prefillCache else { return }
        job.prefillCache = nil
        let capacity = job.prompt.count + parameters.maxTokens
        let seed = parameters.seed ?? UInt64.random(in: .min ... .max)
        for index in 0..<parameters.n {
            let choiceCache = index == 0 ? cache : runner.copy(cache, capacity: capacity)
            job.choices.append(ChoiceState(
                index: index, cache: choiceCache,
                sampler: TokenSampler(parameters: parameters, generator: .forChoice(index, seed: seed)),
                history: TokenHistory(promptTokens: job.prompt, tracksSeenTokens: parameters.repetitionPenalty != 1),
                text: decoding.makeTextStream(),
                stopMatcher: StopStringMatcher(stops: parameters.stop)))
        }
        for choice in job.choices {
            if let lastLogits {
                advance(choice, of: job, logits: lastLogits)
            } else {
                finish(choice, of: job, reason: .length)  // max_tokens = 0: only the prompt was asked for
            }
        }
    }

    /// Samples the choice's first token from the prompt's last logits and reports it.
    private func advance(_ choice: ChoiceState<Cache>, of job: ActiveJob<Cache>, logits: UnsafeBufferPointer<Float>) {
        guard let parameters = job.parameters, !choice.isFinished else { return }
        let token = choice.sampler.sample(logits: logits, history: choice.history, scratch: samplingScratch[0])
        accept(SampledToken(token: token, logprob: parameters.logprobs.map { tokenLogprob(tokenID: token, logits: logits, topCount: $0) }),
               for: choice, of: job)
    }

    /// Records a drawn token and reports it: the end of sequence, a stop string or the length limit
    /// finish the choice.
    private func accept(_ sampled: SampledToken, for choice: ChoiceState<Cache>, of job: ActiveJob<Cache>) {
        guard let parameters = job.parameters, !choice.isFinished else { return }
        let token = sampled.token
        choice.history.append(token)
        choice.generatedTokens += 1
        job.completionTokens += 1
        sampledThisStep += 1
        if token == limits.endOfSequenceTokenID && !parameters.ignoreEOS {
            finish(choice, of: job, reason: .stop)
            return
        }
        let (text, stopped) = choice.stopMatcher.append(choice.text.append(token))
        guard job.send(.token(choice: choice.index, tokenID: token, text: text, logprob: sampled.logprob)) else {
            job.end(.failure(CancellationError()))
            return
        }
        if stopped {
            choice.cache = nil
            job.send(.finished(choice: choice.index, reason: .stop, text: ""))
        } else if choice.generatedTokens >= parameters.maxTokens {
            finish(choice, of: job, reason: .length)
        } else {
            choice.pendingInput = token
        }
    }

    /// Ends a choice for EOS or length: releases held text (a stop string may still complete in the
    /// decoder's final bytes) and frees its cache.
    private func finish(_ choice: ChoiceState<Cache>, of job: ActiveJob<Cache>, reason: FinishReason) {
        choice.cache = nil
        choice.pendingInput = nil
        let (tail, stopped) = choice.stopMatcher.append(choice.text.finish())
        let text = stopped ? tail : tail + choice.stopMatcher.finish()
        job.send(.finished(choice: choice.index, reason: stopped ? .stop : reason, text: text))
    }
}

/// A decode row's draw: the token and, when asked for, its log-probability.
struct SampledToken {
    var token: Int
    var logprob: TokenLogprob?
}

