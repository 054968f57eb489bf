"""The serving benchmark's one table (text, markdown, JSON) and its chart.

Every comparison column reads the same way: above 1× (or 100 %) is better for our server. Throughputs are
ours / theirs; times and memory are theirs / ours. "of ceiling" is ours as a share of the roofline bound
(ceilings.py), or the bound over ours for times and memory.
"""
import math
import statistics

from workload import percentile

UNSUPPORTED = "not supported by this build"


def run_for(result, streams):
    """The engine's run at `streams` streams; with several rounds (--rounds), its run of median tokens/s
    (the lower middle one for an even count), so one disturbed run does not decide a ratio."""
    runs = sorted((run for run in result["runs"] if run["streams"] == streams), key=lambda run: run["tokens"] / run["seconds"])
    return runs[(len(runs) - 1) // 2]


def metrics(plan, roofline):
    """(name, unit, extract(result) → number, higher is better, bound) for every row of the table."""
    prompt_tokens, new_tokens = len(plan.prompts[0]), plan.new_tokens
    prefill_tokens = len(plan.prefill_prompt)
    latency = plan.latency_streams
    megabyte = 1e6
    rows = []
    for streams in plan.streams:
        rows.append((f"generation, {streams} stream{'s' if streams > 1 else ''}", "tokens/s",
                     lambda r, n=streams: run_for(r, n)["tokens"] / run_for(r, n)["seconds"], True,
                     roofline.generation_tokens_per_second(streams, prompt_tokens, new_tokens)))
    for streams in plan.streams:
        rows.append((f"CPU time per token, {streams} stream{'s' if streams > 1 else ''}", "ms",
                     lambda r, n=streams: 1000 * run_for(r, n)["cpu_seconds"] / run_for(r, n)["tokens"], False, None))
    rows += [
        (f"prefill, {prefill_tokens}-token prompt", "tokens/s",
         lambda r: prefill_tokens / sorted(r["prefill_seconds"])[len(r["prefill_seconds"]) // 2], True,
         prefill_tokens / roofline.prefill_seconds(1, prefill_tokens)),
        (f"time to first token p50, {latency} streams", "ms",
         lambda r: 1000 * percentile(run_for(r, latency)["first_token_seconds"], 50), False,
         1000 * roofline.prefill_seconds(latency, prompt_tokens)),
        (f"time to first token p99, {latency} streams", "ms",
         lambda r: 1000 * percentile(run_for(r, latency)["first_token_seconds"], 99), False,
         1000 * roofline.prefill_seconds(latency, prompt_tokens)),
        (f"inter-token latency p50, {latency} streams", "ms",
         lambda r: 1000 * percentile(run_for(r, latency)["inter_token_seconds"], 50), False,
         1000 * roofline.decode_step_seconds(latency, prompt_tokens + new_tokens // 2)),
        (f"inter-token latency p99, {latency} streams", "ms",
         lambda r: 1000 * percentile(run_for(r, latency)["inter_token_seconds"], 99), False,
         1000 * roofline.decode_step_seconds(latency, prompt_tokens + new_tokens // 2)),
        # The median of the timed starts when there were several (load_samples_text lists them).
        ("load to ready", "s", lambda r: r["load_to_ready_seconds"], False, None),
        ("resident memory after load", "MB", lambda r: r["rss_after_load_bytes"] / megabyte, False,
         roofline.weight_bytes / megabyte),
        (f"peak resident memory ({max(plan.streams)} streams)", "MB",
         lambda r: (r["peak_rss_process_bytes"] - r.get("interpreter_rss_bytes", 0)) / megabyte, False,
         (roofline.weight_bytes + max(plan.streams) * (prompt_tokens + new_tokens)
          * roofline.shape.kv_bytes_per_token()) / megabyte),
    ]
    return rows


def advantage(ours, theirs, higher_is_better):
    if not isinstance(ours, (int, float)) or not isinstance(theirs, (int, float)) or not ours or not theirs:
        return None
    return ours / theirs if higher_is_better else theirs / ours


def number(value, digits=1):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, str):
        return value
    return f"{value:,.{digits}f}".replace(",", " ")


def build_rows(plan, modes, ours, baselines, rooflines):
    """One row per (metric, mode). ours[mode] is a result dict or a string saying why there is none;
    baselines[mode] maps 'onnxruntime' and 'transformers' to the result compared with that mode."""
    rows = []
    per_mode = {mode: metrics(plan, rooflines[mode]) for mode in modes}
    for index in range(len(per_mode[modes[0]])):
        for mode in modes:
            name, unit, extract, higher, bound = per_mode[mode][index]
            ours_value = extract(ours[mode]) if isinstance(ours[mode], dict) else ours[mode]
            ort = baselines[mode].get("onnxruntime")
            hf = baselines[mode].get("transformers")
            ort_value = extract(ort) if ort else None
            hf_value = extract(hf) if hf else None
            rows.append({
                "metric": name, "unit": unit, "mode": mode, "higher_is_better": higher,
                "gptneo_server": ours_value, "onnxruntime": ort_value,
                "onnxruntime_model": baselines[mode].get("onnxruntime_model"), "transformers": hf_value,
                "ceiling": bound, "vs_onnxruntime": advantage(ours_value, ort_value, higher),
                "vs_ceiling": advantage(ours_value, bound, higher),
            })
    return rows


def markdown(rows):
    header = ["metric", "mode", "gptneo-server", "ONNX Runtime", "transformers", "ceiling", "ours vs ORT", "ours of ceiling"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * 6]
    for row in rows:
        ort = number(row["onnxruntime"])
        if row["onnxruntime"] is not None and row["onnxruntime_model"] != "float32":
            ort += f" ({row['onnxruntime_model']})"
        ratio = row["vs_onnxruntime"]
        share = row["vs_ceiling"]
        lines.append("| " + " | ".join([
            f"{row['metric']} ({row['unit']})", row["mode"], number(row["gptneo_server"]), ort,
            number(row["transformers"]), number(row["ceiling"]),
            "–" if ratio is None else f"{ratio:.2f}×", "–" if share is None else f"{100 * share:.0f} %",
        ]) + " |")
    return "\n".join(lines)


def chart(path, plan, modes, ours, baselines, rooflines, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    def series(result):
        return [run_for(result, n)["tokens"] / run_for(result, n)["seconds"] for n in plan.streams]

    figure, axes = plt.subplots(figsize=(7.5, 4.8), dpi=100)
    prompt_tokens = len(plan.prompts[0])
    drawn = set()
    for mode in modes:
        if isinstance(ours[mode], dict):
            axes.plot(plan.streams, series(ours[mode]), "o-", linewidth=2.2, label=f"gptneo-server ({mode})")
        for engine, style in (("onnxruntime", "s--"), ("transformers", "^:")):
            result = baselines[mode].get(engine)
            key = (engine, baselines[mode].get(engine + "_model", "float32"))
            if result and key not in drawn:
                drawn.add(key)
                label = "ONNX Runtime" if engine == "onnxruntime" else "transformers (torch)"
                axes.plot(plan.streams, series(result), style, label=f"{label} ({key[1]})")
        bound = [rooflines[mode].generation_tokens_per_second(n, prompt_tokens, plan.new_tokens) for n in plan.streams]
        if mode == modes[0] or isinstance(ours[mode], dict):
            axes.plot(plan.streams, bound, "k-" if mode == modes[0] else "k-.", alpha=0.55, label=f"ceiling ({mode} weights)")
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")  # ratios read as distances, whatever the machine's load did to the absolute values
    axes.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes.yaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
    axes.set_xticks(plan.streams, [str(n) for n in plan.streams])
    axes.set_xlabel("concurrent streams")
    axes.set_ylabel("new tokens/s, all streams (prefill included)")
    axes.set_title(title, fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def ceilings_text(measured):
    """The ceilings of one measure() (ceilings.py) or of best() over a run's measurements: the streaming
    rate's best pass beside its median, since the machine's bandwidth moves with other tenants, the
    OpenBLAS kernels that gave each sgemm rate, and the rate of a first write to fresh memory (what a load
    that copies the weights pays per byte before anything else)."""
    stream = measured["stream"]
    if "runs" in stream:
        median = f"{stream['gb_per_s_median_of_runs']:.1f} GB/s median of the {stream['runs']} measurements"
    else:
        median = f"{stream['gb_per_s_median']:.1f} GB/s median"
    sgemm = ", ".join(f"{m['gflop_per_s_best']:.0f} GFLOP/s ({m['m']}×{m['k']}×{m['n']}, OpenBLAS's {m['openblas_core']} kernels)"
                      for m in (measured["sgemm_decode"], measured["sgemm_prefill"]))
    text = f"weight streaming {stream['gb_per_s_best']:.1f} GB/s (best pass; {median}), sgemm {sgemm}"
    touch = measured.get("touch")
    if touch and "runs" in touch:
        text += (f"; first write to fresh memory {touch['gb_per_s_median']:.2f} GB/s (median; {touch['gb_per_s_min']:.2f}-"
                 f"{touch['gb_per_s_max']:.2f} over the {touch['runs']} measurements)")
    elif touch:
        text += f"; first write to fresh memory {touch['gb_per_s']:.2f} GB/s ({touch['megabytes']} MB in {touch['seconds']:.2f} s)"
    return text


def summary(arguments, cpu, loads, measured, ours, plan):
    """The paragraph above the table: the workload, the machine, its ceilings and its load."""
    text = (f"GPT-Neo {arguments.size} random, {arguments.prompt_tokens}-token prompts, {arguments.tokens} new tokens "
            f"per stream, greedy, {arguments.threads} threads per engine"
            f"{f', median of {arguments.rounds} interleaved rounds' if getattr(arguments, 'rounds', 1) > 1 else ''}; {cpu}; load average {loads['start']:.1f} → "
            f"{loads['end']:.1f}. Ceilings: {ceilings_text(measured)}.")
    client = [f"{1000 * run_for(result, max(plan.streams))['client_cpu_seconds'] / run_for(result, max(plan.streams))['tokens']:.2f}"
              f" ({mode})" for mode, result in ours.items() if isinstance(result, dict)]
    if client:
        text += (f" Our HTTP clients used {', '.join(client)} ms of CPU per token at {max(plan.streams)} streams,"
                 " on the server's cores.")
    return text


def rounds_text(plan, modes, ours, baselines, bound=None):
    """Each memory-bound run by round, ours beside ONNX Runtime's, with the streaming bandwidth measured
    just before and after each run: on a host whose bandwidth moves between minutes, a round's ratio may
    compare runs made at different rates, and this shows which did. With `bound(mode, streams, gb_per_s)`,
    the roofline's tokens/s at a given bandwidth, our runs also show their share of the roofline at the
    lower of their two measurements. Empty if no run carries a measurement."""
    def runs(result, streams):
        return [run for run in result["runs"] if run["streams"] == streams]

    def described(run, mode=None):
        before, after = run["stream_gb_per_s"]
        rate = run["tokens"] / run["seconds"]
        share = f", {100 * rate / bound(mode, run['streams'], min(before, after)):.0f} % of its roofline" if bound and mode else ""
        return f"{rate:.1f} tokens/s ({before:.0f}→{after:.0f} GB/s{share})"

    lines = []
    for mode in modes:
        if not isinstance(ours[mode], dict) or not baselines[mode].get("onnxruntime"):
            continue
        for streams in plan.streams:
            pairs = [(a, b) for a, b in zip(runs(ours[mode], streams), runs(baselines[mode]["onnxruntime"], streams))
                     if "stream_gb_per_s" in a and "stream_gb_per_s" in b]
            if not pairs:
                continue
            rounds = "; ".join(f"round {index}: ours {described(a, mode)}, ORT {described(b)}, "
                               f"{(a['tokens'] / a['seconds']) / (b['tokens'] / b['seconds']):.2f}×"
                               for index, (a, b) in enumerate(pairs, 1))
            lines.append(f"- {mode}, {streams} stream{'s' if streams > 1 else ''}: {rounds}.")
    if not lines:
        return ""
    return ("Memory-bound runs by round, with the weight-streaming bandwidth measured just before → just after each "
            "(ORT's model as in the table):\n" + "\n".join(lines))


def prefill_rounds_text(plan, modes, ours, baselines, bound):
    """Each round's prefill, ours beside ONNX Runtime's, with OpenBLAS's sgemm rate at the prefill shape
    measured just before and just after each engine's prefill, and each one's share of the roofline at the
    mean of its two measurements (`bound(mode, gflop_per_s)`: the roofline's prefill tokens/s at that rate).
    The table's ceiling is the best sgemm rate of the whole run, while a prefill runs at the rate of its
    minute; this shows both. A round's tokens/s is of the median of its timed prefills. Empty if no
    prefill carries a measurement."""
    def rounds(result):
        seconds, rates = result.get("prefill_seconds", []), result.get("prefill_sgemm_gflop_per_s", [])
        per_round = plan.prefill_repeats
        return [(len(plan.prefill_prompt) / statistics.median(seconds[i * per_round:(i + 1) * per_round]), rate)
                for i, rate in enumerate(rates) if len(seconds) >= (i + 1) * per_round]

    def share(mode, tokens_per_second, rate):
        return tokens_per_second / bound(mode, sum(rate) / 2)

    lines = []
    for mode in modes:
        ort = baselines[mode].get("onnxruntime")
        if not isinstance(ours[mode], dict) or not ort:
            continue
        pairs = list(zip(rounds(ours[mode]), rounds(ort)))
        if not pairs:
            continue
        described = "; ".join(
            f"round {index}: ours {a:.0f} tokens/s ({ra[0]:.0f}→{ra[1]:.0f} GFLOP/s, {100 * share(mode, a, ra):.0f} %), "
            f"ORT {b:.0f} tokens/s ({rb[0]:.0f}→{rb[1]:.0f} GFLOP/s, {100 * share(mode, b, rb):.0f} %)"
            for index, ((a, ra), (b, rb)) in enumerate(pairs, 1))
        ours_median = statistics.median(share(mode, a, ra) for (a, ra), _ in pairs)
        ort_median = statistics.median(share(mode, b, rb) for _, (b, rb) in pairs)
        lines.append(f"- {mode}: {described}; median share ours {100 * ours_median:.0f} %, ORT {100 * ort_median:.0f} %.")
    if not lines:
        return ""
    return ("Prefill by round, with OpenBLAS's sgemm rate (512 rows) measured just before → just after each engine's "
            "prefill, and its share of the roofline at the mean of the two (ORT's model as in the table):\n" + "\n".join(lines))


def paired_ratios_text(plan, modes, ours, baselines):
    """Ours over ONNX Runtime round by round at every stream count, and the median of those ratios. The table
    divides the two engines' median runs, which may come from different rounds; a round runs both engines
    within minutes of each other, so its ratio compares them at nearly the same state of a host whose speed
    moves between rounds. Empty with a single round."""
    def rates(result, streams):
        return [run["tokens"] / run["seconds"] for run in result["runs"] if run["streams"] == streams]

    lines = []
    for mode in modes:
        if not isinstance(ours[mode], dict) or not baselines[mode].get("onnxruntime"):
            continue
        parts = []
        for streams in plan.streams:
            ratios = [a / b for a, b in zip(rates(ours[mode], streams), rates(baselines[mode]["onnxruntime"], streams))]
            if len(ratios) < 2:
                continue
            middle = sorted(ratios)[(len(ratios) - 1) // 2]
            parts.append(f"{streams} stream{'s' if streams > 1 else ''} {' / '.join(f'{r:.2f}' for r in ratios)} "
                         f"(median {middle:.2f}×)")
        if parts:
            lines.append(f"- {mode}: " + "; ".join(parts) + ".")
    if not lines:
        return ""
    return ("Ours over ONNX Runtime round by round (the same round's runs; the table divides medians taken over "
            "all rounds; ORT's model as in the table):\n" + "\n".join(lines))


def load_samples_text(modes, ours, pause_seconds):
    """Every timed start of our server by mode, in order (the first with the engines before it just loaded, the
    others `pause_seconds` after stopping it), and their median, which the table's load row gives. Empty when
    each mode was started once."""
    lines = []
    for mode in modes:
        samples = ours[mode].get("load_to_ready_seconds_each", []) if isinstance(ours[mode], dict) else []
        if len(samples) > 1:
            lines.append(f"- {mode}: {' / '.join(f'{s:.2f}' for s in samples)} s "
                         f"(median {statistics.median(samples):.2f} s).")
    if not lines:
        return ""
    return ("Load to ready, each start of gptneo-server (the first with the engines before it just loaded, the "
            f"others after all runs, {pause_seconds:g} s after stopping it; the table gives the median):\n" + "\n".join(lines))


def agreement_line(counts, streams):
    return f"Greedy outputs identical to ONNX Runtime's (first streams of the {streams}-stream run): " + ", ".join(
        f"{name} {value['identical']}/{value['compared']}" for name, value in counts.items())
