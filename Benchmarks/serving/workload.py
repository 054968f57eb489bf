"""What every engine in the serving benchmark is asked to do, and the measurements they share.

The workload is one JSON "plan" written by bench.py and read by each engine's driver, so the
transformers and ONNX Runtime baselines and our server get the same prompts (token ids, not text: no
tokenizer can make them differ), the same number of new tokens per stream and the same warm-up.
"""
import json
import os
import resource
import time
from dataclasses import asdict, dataclass, field

import numpy as np

EOS_TOKEN = 50256


@dataclass
class Plan:
    streams: list           # concurrent stream counts, e.g. [1, 8, 32, 64]
    new_tokens: int         # tokens generated per stream in every timed run
    prompts: list           # max(streams) prompts of prompt_tokens ids each; stream i gets prompts[i]
    prefill_prompt: list    # one long prompt, for prefill tokens/s
    prefill_repeats: int
    warmup_tokens: int      # per stream, before each timed run (excluded from every figure)
    latency_streams: int    # the stream count whose time to first token and inter-token latency are reported
    threads: int

    @staticmethod
    def make(streams, new_tokens, prompt_tokens, prefill_tokens, prefill_repeats, warmup_tokens,
             latency_streams, threads, seed=11):
        """Random ids below the end-of-text token, seeded: the same plan on every run."""
        rng = np.random.default_rng(seed)
        prompts = rng.integers(0, EOS_TOKEN, size=(max(streams), prompt_tokens)).tolist()
        prefill = rng.integers(0, EOS_TOKEN, size=prefill_tokens).tolist()
        return Plan(sorted(streams), new_tokens, prompts, prefill, prefill_repeats, warmup_tokens,
                    latency_streams, threads)

    def save(self, path):
        with open(path, "w") as f:
            json.dump(asdict(self), f)

    @staticmethod
    def load(path):
        with open(path) as f:
            return Plan(**json.load(f))


@dataclass
class StreamRun:
    """One timed run of `streams` concurrent streams."""
    streams: int
    tokens: int                     # new tokens produced, all streams together
    seconds: float                  # first request sent → last token received
    cpu_seconds: float              # CPU time of the engine's process (all threads) during the run
    first_token_seconds: list       # per stream: request sent → first token
    inter_token_seconds: list       # every gap between consecutive tokens (or chunks) of a stream
    outputs: list = field(default_factory=list)  # the first few streams' new token ids (or text)
    client_cpu_seconds: float = 0.0  # CPU time of the HTTP clients, which share the machine with the server


def percentile(values, q):
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


def rss_bytes(pid="self", field_name="VmRSS"):
    """Resident memory (VmRSS) or its peak (VmHWM) of a process, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field_name} in /proc/{pid}/status")


def process_cpu_seconds(pid):
    """User + system time of another process and all its threads, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_average():
    return os.getloadavg()[0]


def now():
    return time.perf_counter()
