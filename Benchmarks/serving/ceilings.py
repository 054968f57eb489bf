"""The machine's ceilings, measured by the MachineCeilings target, turned into bounds for each figure.

A roofline: a decode step must read every weight once (plus each stream's KV cache) and do two flops per
weight per stream (plus attention), so it takes at least max(bytes / streaming rate, flops / sgemm rate).
The streaming rate is the best of repeated 2-thread passes over a 500 MB buffer; the sgemm rate is
OpenBLAS's best at a batched-decode shape (32 rows) for decoding and at a prefill shape (512 rows) for
prompts, over the kernels it has for this CPU (see sgemm_core_types). Only what a step needs is counted:
the LM head for one row per sequence, local layers' window.
"""
import json
import os
import statistics
import subprocess

# Bytes a weight takes in memory in each mode (int8's per-channel scales are under 0.2 % and ignored).
BYTES_PER_WEIGHT = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}


# The AVX-512 subsets of Skylake-SP, for which OpenBLAS's SkylakeX kernels are built.
AVX512_FLAGS = {"avx512f", "avx512bw", "avx512dq", "avx512vl"}


def sgemm_core_types(cpuinfo="/proc/cpuinfo"):
    """OPENBLAS_CORETYPE values to measure sgemm with: None for OpenBLAS's own CPU detection, and
    SKYLAKEX, its AVX-512 kernels, where the CPU has AVX-512. The detection is a table of the CPU models
    its release knows; where it gives a CPU with AVX-512 AVX2 kernels, at half the FMA rate, the ceiling
    would be a fraction of the machine's. COOPERLAKE is not tried: it has the same sgemm kernels and
    blocking as SKYLAKEX (it adds bfloat16 ones), and Debian's 0.3.21 does not accept that name."""
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    return [None, "SKYLAKEX"] if AVX512_FLAGS <= set(flags) else [None]


def _run(binary, *arguments, core_type=None):
    """One MachineCeilings run (its last line of JSON), with OPENBLAS_CORETYPE set to `core_type` or, for
    None, unset: OpenBLAS's own detection."""
    environment = {key: value for key, value in os.environ.items() if key != "OPENBLAS_CORETYPE"}
    if core_type:
        environment["OPENBLAS_CORETYPE"] = core_type
    output = subprocess.run([binary, *map(str, arguments)], check=True, capture_output=True, text=True,
                            env=environment).stdout
    return json.loads(output.strip().splitlines()[-1])


def _sgemm(binary, rows, hidden, intermediate, threads, seconds):
    """The sgemm shape run once per core type (a fresh process each: OpenBLAS reads OPENBLAS_CORETYPE
    once, when it loads), the fastest kept, with every core type's best under "gflop_per_s_by_core"."""
    runs = [_run(binary, "sgemm", rows, hidden, intermediate, threads, seconds, core_type=core_type)
            for core_type in sgemm_core_types()]
    fastest = dict(max(runs, key=lambda result: result["gflop_per_s_best"]))
    fastest["gflop_per_s_by_core"] = {result["openblas_core"]: result["gflop_per_s_best"] for result in runs}
    return fastest


def measure(binary, hidden, intermediate, threads, stream_megabytes):
    """Runs MachineCeilings; returns its four JSON results, each sgemm shape with its fastest kernels."""
    return {"stream": _run(binary, "stream", stream_megabytes, threads, 3),
            "touch": _run(binary, "touch", stream_megabytes, threads),
            "sgemm_decode": _sgemm(binary, 32, hidden, intermediate, threads, 2),
            "sgemm_prefill": _sgemm(binary, 512, hidden, intermediate, threads, 3)}


def bandwidth_now(binary, threads, megabytes=500, seconds=0.3):
    """The streaming rate of this moment (best pass of a short measurement, GB/s). The host's bandwidth
    moves between minutes (on the reference machine between about 50 and 80 GB/s), and the weight stream
    sets the speed of few-stream decoding, so each such run is measured between two of these."""
    output = subprocess.run([binary, "stream", str(megabytes), str(threads), str(seconds)], check=True,
                            capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])["gb_per_s_best"]


def sgemm_now(binary, hidden, intermediate, threads, seconds=0.3):
    """OpenBLAS's sgemm rate of this moment at the prefill shape (512 rows; best of a short measurement
    with its fastest kernels, GFLOP/s). Like the bandwidth, the FMA rate the host gives two threads moves
    between minutes, so each prefill measurement is taken between two of these."""
    return _sgemm(binary, 512, hidden, intermediate, threads, seconds)["gflop_per_s_best"]


def best(runs):
    """Each ceiling's best measurement over several runs of measure(). The streaming one also carries the
    median of the runs' medians ("gb_per_s_median_of_runs"): the machine's bandwidth moves with other
    tenants between minutes, and the best says what it can do, not what a run had."""
    key = {"stream": "gb_per_s_best", "sgemm_decode": "gflop_per_s_best", "sgemm_prefill": "gflop_per_s_best"}
    chosen = {name: dict(max((run[name] for run in runs), key=lambda m: m[field])) for name, field in key.items()}
    chosen["stream"]["gb_per_s_median_of_runs"] = statistics.median(run["stream"]["gb_per_s_median"] for run in runs)
    chosen["stream"]["runs"] = len(runs)
    # The first write to fresh memory is no ceiling to take the best of: it is what every load pays at that
    # moment (under a hypervisor, mostly the host backing the pages), so its spread is kept.
    touches = [run["touch"]["gb_per_s"] for run in runs if "touch" in run]
    if touches:
        chosen["touch"] = {"gb_per_s_median": statistics.median(touches), "gb_per_s_min": min(touches),
                           "gb_per_s_max": max(touches), "runs": len(touches)}
    return chosen


class Shape:
    """The parts of a GPT-Neo config.json that set the work of a step."""

    def __init__(self, config):
        self.hidden = config["hidden_size"]
        self.layers = config["num_layers"]
        self.vocab = config["vocab_size"]
        self.positions = config["max_position_embeddings"]
        self.window = config["window_size"]
        self.intermediate = config.get("intermediate_size") or 4 * self.hidden
        self.attention = config.get("attention_layers") or [
            kind for kinds, repeat in config["attention_types"] for _ in range(repeat) for kind in kinds]

    @property
    def layer_weights(self):
        """Weights of the linear layers per layer: q, k, v, out projections and the MLP."""
        return 4 * self.hidden * self.hidden + 2 * self.hidden * self.intermediate

    @property
    def matmul_weights(self):
        """Weights every decode step multiplies: all layers and the LM head (tied to the token embedding)."""
        return self.layers * self.layer_weights + self.vocab * self.hidden

    @property
    def all_weights(self):
        return self.matmul_weights + self.positions * self.hidden

    def attended(self, context):
        """Keys attended by one query at this context length, summed over the layers."""
        return sum(context if kind == "global" else min(context, self.window) for kind in self.attention)

    def kv_bytes_per_token(self):
        return 2 * self.layers * self.hidden * 4  # keys and values, fp32 in every mode


class Roofline:
    def __init__(self, shape, measured, mode):
        self.shape = shape
        self.bandwidth = measured["stream"]["gb_per_s_best"] * 1e9
        self.decode_flops = measured["sgemm_decode"]["gflop_per_s_best"] * 1e9
        self.prefill_flops = measured["sgemm_prefill"]["gflop_per_s_best"] * 1e9
        self.weight_bytes = shape.matmul_weights * BYTES_PER_WEIGHT[mode]

    def decode_step_seconds(self, streams, context):
        s = self.shape
        kv_read = streams * s.attended(context) * s.hidden * 2 * 4
        flops = streams * (2 * s.matmul_weights + 4 * s.hidden * s.attended(context))
        return max((self.weight_bytes + kv_read) / self.bandwidth, flops / self.decode_flops)

    def generation_tokens_per_second(self, streams, prompt_tokens, new_tokens):
        """New tokens per second of a whole timed run, as measured: the prompts' prefill (which yields the
        first token) and then a decode step per further token."""
        seconds = self.prefill_seconds(streams, prompt_tokens) + sum(
            self.decode_step_seconds(streams, prompt_tokens + t) for t in range(1, new_tokens))
        return streams * new_tokens / seconds

    def prefill_seconds(self, prompts, prompt_tokens):
        """Prompts of prompt_tokens each, in one pass; logits for each prompt's last row only."""
        s = self.shape
        attention = sum(4 * s.hidden * s.attended(t + 1) for t in range(prompt_tokens))
        flops = prompts * (prompt_tokens * 2 * s.layers * s.layer_weights + attention + 2 * s.hidden * s.vocab)
        return max(flops / self.prefill_flops, self.weight_bytes / self.bandwidth)
