#!/usr/bin/env python3
"""The serving benchmark: machine ceilings, transformers, ONNX Runtime and gptneo-server in one run.

Run through scripts/bench.sh, which installs the Python packages, builds the release binaries and passes
their paths. Order of a run: models (made once, cached), ceilings, then every engine loaded (transformers,
ONNX Runtime's float32 model and, for the int8 mode, its QInt8 model, our server once per mode) and run
interleaved, ceilings again. Writes table.md, results.json, tokens-per-second.png and the engines' logs
into the output directory. README.md beside this file says how each figure is measured.
"""
import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import baseline  # noqa: E402
import ceilings  # noqa: E402
import report  # noqa: E402
import server_driver  # noqa: E402
from workload import Plan, load_average, process_cpu_seconds  # noqa: E402

QUICK = {}
MODES = ["float32", "float16", "bfloat16", "int8"]
# How a mode is asked of the server: the option must appear in its --help, or the mode is not supported.
MODE_ARGUMENTS = {"float32": [], "float16": ["--dtype", "float16"], "bfloat16": ["--dtype", "bfloat16"],
                  "int8": ["--quantization", "int8"]}


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="the release gptneo-server binary")
    parser.add_argument("--ceilings", required=True, help="the release MachineCeilings binary")
    parser.add_argument("--size", choices=["125m", "1.3b"], default="125m")
    parser.add_argument("--cache", required=True, help="where models are made and kept")
    parser.add_argument("--output", required=True)
    parser.add_argument("--modes", default="float32",
                        help=f"comma-separated subset of {','.join(MODES)}, or 'all' (default float32)")
    parser.add_argument("--streams", default="1,8,32,64")
    parser.add_argument("--rounds", type=int, default=1,
                        help="timed runs per stream count and engine, interleaved round by round; the table reports "
                             "each engine's run of median tokens/s (default 1)")
    # Numbers of the full run, then of --quick (a smoke test of the whole pipeline in a minute or two).
    for name, full, quick, meaning in [
        ("tokens", 64, 8, "new tokens per stream in each timed run"),
        ("prompt-tokens", 32, 32, "tokens of each stream's prompt"),
        ("prefill-tokens", 512, 64, "tokens of the prefill prompt"),
        ("prefill-repeats", 2, 1, "timed prefill runs per round (the median of all rounds' is reported)"),
        ("warmup-tokens", 4, 2, "tokens per stream generated before each timed run, not timed"),
        ("stream-megabytes", 500, 100, "buffer read by the weight-streaming measurement"),
        ("load-samples", 3, 1, "starts of each gptneo-server mode timed to ready (the median is reported; the first "
                               "start's, with the engines before it just loaded, is one of them)"),
    ]:
        parser.add_argument(f"--{name}", type=int, help=f"{meaning} (default {full}; {quick} with --quick)")
        QUICK[name.replace("-", "_")] = (full, quick)
    parser.add_argument("--quick", action="store_true", help="few tokens, short prompts: checks the pipeline, not the speed")
    parser.add_argument("--latency-streams", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="threads of every engine and of the ceilings")
    parser.add_argument("--skip-transformers", action="store_true")
    parser.add_argument("--ort-spinning", action="store_true",
                        help="ONNX Runtime's default of spinning idle threads (off by default: see README.md)")
    arguments = parser.parse_args()
    for name, (full, quick) in QUICK.items():
        if getattr(arguments, name) is None:
            setattr(arguments, name, quick if arguments.quick else full)
    arguments.modes = MODES if arguments.modes == "all" else arguments.modes.split(",")
    unknown = [mode for mode in arguments.modes if mode not in MODES]
    if unknown:
        parser.error(f"unknown mode {', '.join(unknown)} (known: {', '.join(MODES)})")
    arguments.streams = sorted({int(n) for n in arguments.streams.split(",")})
    if arguments.rounds < 1:
        parser.error("--rounds must be at least 1")
    if arguments.load_samples < 1:
        parser.error("--load-samples must be at least 1")
    if arguments.latency_streams not in arguments.streams:
        parser.error("--latency-streams must be one of --streams")
    return arguments


def log(message):
    print(f"[{datetime.datetime.now():%H:%M:%S}] {message}", flush=True)


def make_engines(arguments, options, models, plan, plan_path, shape):
    """The engines to run, in order, and for each mode our server cannot run, why."""
    output = arguments.output
    engines = []
    if not arguments.skip_transformers:
        engines.append(baseline.BaselineEngine("transformers", "transformers", models["checkpoint"], plan_path,
                                               models["checkpoint"], os.path.join(output, "transformers.log")))
    engines.append(baseline.BaselineEngine("onnxruntime", "onnxruntime", models["onnx"], plan_path, models["checkpoint"],
                                           os.path.join(output, "onnxruntime.log"), arguments.ort_spinning))
    if "onnx_int8" in models:
        engines.append(baseline.BaselineEngine("onnxruntime_int8", "onnxruntime", models["onnx_int8"], plan_path,
                                               models["checkpoint"], os.path.join(output, "onnxruntime-int8.log"),
                                               arguments.ort_spinning))
    max_streams = max(plan.streams)
    # Room for every stream's whole sequence with a margin; the server's default budget is for the 125M shape.
    kv_mib = int(1.5 * max_streams * (arguments.prompt_tokens + arguments.tokens + arguments.prefill_tokens)
                 * shape.kv_bytes_per_token() / 2**20) + 64
    unsupported = {}
    for mode in arguments.modes:
        extra = server_arguments(mode, arguments.threads, options, kv_mib, max_streams)
        if isinstance(extra, str):
            unsupported[mode] = extra
            continue
        engines.append(server_driver.ServerEngine(f"gptneo-server {mode}", arguments.server, models["checkpoint"], extra,
                                                  plan, os.path.join(output, f"gptneo-server-{mode}.log")))
    return engines, unsupported


# Stream counts up to this one are limited by the weight stream from memory: their runs are bracketed
# by a measurement of the bandwidth of the moment (report.rounds_text shows them).
MEMORY_BOUND_STREAMS = 8


# Seconds between stopping a server and starting it again for another load sample (ServerEngine.reload).
RELOAD_PAUSE_SECONDS = 3


def run_engines(engines, streams, rounds, interleave, loads, between_rounds, bandwidth_now, load_samples=1,
                sgemm_now=None):
    """Runs every engine through load, one timed run per stream count and prefill per round, and finish; returns the
    failures by engine name. Interleaved (all engines loaded at once, each stream count run by every engine
    back to back), a change in the machine's load hits all engines alike; the 1.3B shape does not fit in
    memory three times over, so it runs one engine after the other. A run of a memory-bound stream count
    carries the streaming bandwidth measured just before and just after it ("stream_gb_per_s"); each round's
    prefill, with `sgemm_now`, the sgemm rate at the prefill shape ("prefill_sgemm_gflop_per_s", one
    [before, after] pair per round)."""
    failures = {}

    def step(engine, what, *arguments):
        if engine.name in failures:
            return
        # The other engines wait, loaded, while one runs: their CPU time in that while is recorded, as
        # evidence that waiting workers (OpenMP, ONNX Runtime's spinning threads) take nothing from it.
        others = [other.pid for other in engines if other is not engine and other.pid]
        before = [process_cpu_seconds(pid) for pid in others]
        try:
            bracketed = what == "run" and arguments[0] <= MEMORY_BOUND_STREAMS
            before_bandwidth = bandwidth_now() if bracketed else None
            flops_bracketed = what == "prefill" and sgemm_now is not None
            before_flops = sgemm_now() if flops_bracketed else None
            value = getattr(engine, what)(*arguments)
            if bracketed:
                value["stream_gb_per_s"] = [before_bandwidth, bandwidth_now()]
            if flops_bracketed:
                engine.result.setdefault("prefill_sgemm_gflop_per_s", []).append([before_flops, sgemm_now()])
            if what == "run":
                idle = sum(process_cpu_seconds(pid) for pid in others) - sum(before)
                value["others_cpu_seconds"] = idle
                log(f"  {engine.name}: {arguments[0]} streams: {value['tokens'] / value['seconds']:.1f} tokens/s"
                    f" (waiting engines used {idle:.2f} s of CPU in its {value['seconds']:.1f} s)")
        except (server_driver.ServerError, RuntimeError, OSError) as error:
            log(f"  {engine.name} failed: {error}")
            failures[engine.name] = str(error)
            engine.stop()

    def all_steps(group):
        for engine in group:
            log(f"{engine.name}: load, load average {load_average():.1f}")
            loads[engine.name] = load_average()
            step(engine, "start")
        for _ in range(rounds):
            for n in streams:
                for engine in group:
                    step(engine, "run", n)
                if interleave:
                    between_rounds()
            # Prefill in every round too, so that its median spans the run's moments as the stream
            # counts' do: measured once at the end, it read only the machine's state at that minute.
            for engine in group:
                step(engine, "prefill")
        for engine in group:
            step(engine, "finish")
        # Our server's further load samples, after every run, so that no restart changes what the runs met.
        for _ in range(load_samples - 1):
            for engine in group:
                if hasattr(engine, "reload"):
                    log(f"{engine.name}: another load, load average {load_average():.1f}")
                    step(engine, "reload", RELOAD_PAUSE_SECONDS)

    try:
        if interleave:
            all_steps(engines)
        else:
            for engine in engines:
                all_steps([engine])
                between_rounds()
    finally:
        for engine in engines:
            engine.stop()
    return failures


def server_arguments(mode, threads, options, kv_cache_mib, max_streams):
    """The server's arguments for a mode, or a string saying why this build cannot run it."""
    wanted = MODE_ARGUMENTS[mode]
    if wanted and wanted[0] not in options:
        return report.UNSUPPORTED
    extra = list(wanted)
    if "--threads" in options:
        extra += ["--threads", str(threads)]
    return extra + ["--max-running-sequences", str(max_streams), "--kv-cache-mib", str(kv_cache_mib),
                    "--max-queued-requests", str(max(256, max_streams))]


def compare_outputs(ours, theirs):
    """How many of the first streams' texts agree (greedy decoding must give the same tokens)."""
    pairs = list(zip(ours, theirs))
    return {"compared": len(pairs), "identical": sum(a == b for a, b in pairs)}


def prepare(arguments):
    """The models (made if missing), their shape, and the plan every engine follows."""
    log(f"models ({arguments.size}) in {arguments.cache}")
    command = [sys.executable, os.path.join(HERE, "prepare_models.py"), "--size", arguments.size, "--cache", arguments.cache]
    if "int8" in arguments.modes:
        command.append("--int8")
    output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    models = json.loads(output.strip().splitlines()[-1])
    with open(os.path.join(models["checkpoint"], "config.json")) as f:
        shape = ceilings.Shape(json.load(f))
    plan = Plan.make(arguments.streams, arguments.tokens, arguments.prompt_tokens, arguments.prefill_tokens,
                     arguments.prefill_repeats, arguments.warmup_tokens, arguments.latency_streams, arguments.threads)
    return models, shape, plan


def measure_ceilings(arguments, shape, when):
    log(f"machine ceilings ({when}): weight streaming and sgemm")
    measured = ceilings.measure(arguments.ceilings, shape.hidden, shape.intermediate, arguments.threads,
                                arguments.stream_megabytes)
    log(f"  {report.ceilings_text(measured)}")
    return measured


def baselines_by_mode(modes, baseline_results):
    """What each mode of ours is compared with: ORT's QInt8 model for int8, its float32 model otherwise;
    transformers (float32) for float32 only."""
    baselines = {}
    for mode in modes:
        entry = {"onnxruntime": baseline_results["onnxruntime"], "onnxruntime_model": "float32"}
        if mode == "int8" and "onnxruntime_int8" in baseline_results:
            entry = {"onnxruntime": baseline_results["onnxruntime_int8"], "onnxruntime_model": "QInt8"}
        if mode == "float32" and "transformers" in baseline_results:
            entry["transformers"] = baseline_results["transformers"]
        baselines[mode] = entry
    return baselines


def agreement(plan, ours, baselines, baseline_results):
    """Greedy texts of the latency run's first streams: ours against ORT's, transformers' ids against ORT's."""
    def latency_run(result):
        return report.run_for(result, plan.latency_streams)
    counts = {}
    for mode, result in ours.items():
        if isinstance(result, dict):
            counts[mode] = compare_outputs(latency_run(result)["outputs"],
                                           latency_run(baselines[mode]["onnxruntime"])["outputs_text"])
    if "transformers" in baseline_results:
        counts["transformers"] = compare_outputs(latency_run(baseline_results["transformers"])["outputs"],
                                                 latency_run(baseline_results["onnxruntime"])["outputs"])
    return counts


def main():
    # SIGTERM unwinds like an exception, so run_engines stops the servers and workers it started.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    arguments = parse_arguments()
    os.makedirs(arguments.output, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    models, shape, plan = prepare(arguments)
    plan_path = os.path.join(arguments.output, "plan.json")
    plan.save(plan_path)

    loads = {"start": load_average()}
    # The ceilings are measured at the start, after each round and at the end, and each one's best is
    # kept: other work on a shared machine only ever lowers a ceiling, and a ceiling measured too low
    # would flatter every engine.
    ceiling_runs = [measure_ceilings(arguments, shape, "start")]
    options = server_driver.supported_options(arguments.server)
    engines, ours = make_engines(arguments, options, models, plan, plan_path, shape)
    for mode, why in ours.items():
        log(f"gptneo-server ({mode}): {why}")
    failures = run_engines(engines, plan.streams, arguments.rounds, interleave=arguments.size == "125m", loads=loads,
                           between_rounds=lambda: ceiling_runs.append(measure_ceilings(arguments, shape, "between rounds")),
                           bandwidth_now=lambda: ceilings.bandwidth_now(arguments.ceilings, arguments.threads),
                           load_samples=arguments.load_samples,
                           sgemm_now=lambda: ceilings.sgemm_now(arguments.ceilings, shape.hidden, shape.intermediate,
                                                                arguments.threads))
    for engine in engines:
        if engine.name.startswith("gptneo-server "):
            mode = engine.name.split(" ", 1)[1]
            ours[mode] = f"failed: {failures[engine.name]}" if engine.name in failures else engine.result
        elif engine.name in failures:
            sys.exit(f"the {engine.name} baseline failed: {failures[engine.name]}")
    ours = {mode: ours[mode] for mode in arguments.modes}
    baseline_results = {engine.name: engine.result for engine in engines if not engine.name.startswith("gptneo-server ")}
    loads["end"] = load_average()
    ceiling_runs.append(measure_ceilings(arguments, shape, "end"))
    measured = ceilings.best(ceiling_runs)
    rooflines = {mode: ceilings.Roofline(shape, measured, mode) for mode in arguments.modes}
    baselines = baselines_by_mode(arguments.modes, baseline_results)

    # A mode our server cannot run has rows only when it has its own baseline (int8: the QInt8 model);
    # the others would repeat the float32 baselines beside "not supported".
    table_modes = [mode for mode in arguments.modes if mode == arguments.modes[0] or isinstance(ours[mode], dict)
                   or baselines[mode]["onnxruntime_model"] != "float32"]
    rows = report.build_rows(plan, table_modes, ours, baselines, rooflines)
    table = report.markdown(rows)
    left_out = [f"{mode}: {ours[mode]}" for mode in arguments.modes if mode not in table_modes]
    if left_out:
        table += "\n\nNot measured for gptneo-server: " + "; ".join(left_out) + "."
    agreed = agreement(plan, ours, baselines, baseline_results)

    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
    title = (f"GPT-Neo {arguments.size} (random weights), greedy, {arguments.prompt_tokens}-token prompts, "
             f"{arguments.tokens} new tokens/stream, {arguments.threads} threads\n{cpu}, {started:%Y-%m-%d %H:%M} UTC")
    report.chart(os.path.join(arguments.output, "tokens-per-second.png"), plan, arguments.modes, ours, baselines,
                 rooflines, title)
    text = report.summary(arguments, cpu, loads, measured, ours, plan) + "\n\n" + table + "\n\n" + \
        report.agreement_line(agreed, plan.latency_streams)
    def bound_at(mode, streams, gb_per_s):
        moment = dict(measured, stream=dict(measured["stream"], gb_per_s_best=gb_per_s))
        return ceilings.Roofline(shape, moment, mode).generation_tokens_per_second(streams, len(plan.prompts[0]), plan.new_tokens)
    by_round = report.rounds_text(plan, table_modes, ours, baselines, bound=bound_at)
    if by_round:
        text += "\n\n" + by_round
    def prefill_bound_at(mode, gflop_per_s):
        moment = dict(measured, sgemm_prefill=dict(measured["sgemm_prefill"], gflop_per_s_best=gflop_per_s))
        tokens = len(plan.prefill_prompt)
        return tokens / ceilings.Roofline(shape, moment, mode).prefill_seconds(1, tokens)
    prefill_rounds = report.prefill_rounds_text(plan, table_modes, ours, baselines, bound=prefill_bound_at)
    if prefill_rounds:
        text += "\n\n" + prefill_rounds
    paired = report.paired_ratios_text(plan, table_modes, ours, baselines)
    if paired:
        text += "\n\n" + paired
    load_samples = report.load_samples_text(table_modes, ours, RELOAD_PAUSE_SECONDS)
    if load_samples:
        text += "\n\n" + load_samples
    with open(os.path.join(arguments.output, "table.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(arguments.output, "results.json"), "w") as f:
        json.dump({"started": started.isoformat(), "size": arguments.size, "modes": arguments.modes,
                   "machine": {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform()},
                   "load_average": loads, "ceilings": measured, "ceilings_each": ceiling_runs,
                   "models": models, "server_options": sorted(options), "rows": rows, "agreement": agreed,
                   "plan": {key: value for key, value in plan.__dict__.items() if key not in ("prompts", "prefill_prompt")},
                   "gptneo_server": ours, "baselines": baseline_results}, f, indent=1)
    print("\n" + text)
    print(f"\nwritten to {arguments.output} (table.md, results.json, tokens-per-second.png)")


if __name__ == "__main__":
    main()
