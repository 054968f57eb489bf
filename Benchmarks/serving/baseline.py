#!/usr/bin/env python3
"""One in-process baseline of the serving benchmark, driven by bench.py over standard input and output.

    python baseline.py --engine transformers|onnxruntime --model DIR --plan plan.json --tokenizer DIR
    then lines of JSON: {"run": N} (warm-up, then a timed run of N streams), {"prefill": 1}, {"finish": 1};
    one JSON line answers each, after a first {"ready": true} once the model is loaded and has run once.

Each baseline runs in its own process, so its resident memory and CPU time are its own, and it stays loaded
between commands, so bench.py can interleave engines (runs of 8 streams of every engine back to back).
Both use Hugging Face's `generate` (greedy, KV cache) on a batch of N equal-length prompts: the batch a
server would form if N requests arrived together and all asked for the same number of tokens, i.e. static
batching in its best case (no padding, no arrivals, no early finishers). For ONNX Runtime this is optimum's
ORTModelForCausalLM on a model exported with past_key_values, so each step feeds one token per stream and
the cache. End of text never stops a stream (eos_token_id is cleared), as `ignore_eos` does for our server.
"""
import argparse
import json
import os
import subprocess
import sys
from dataclasses import asdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workload import Plan, StreamRun, now, own_cpu_seconds, rss_bytes  # noqa: E402


class StepClock:
    """A `generate` streamer that only notes when each step's tokens exist: the first `put` is the prompt."""

    def __init__(self):
        self.times, self.tokens, self.prompt_seen = [], [], False

    def put(self, value):
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.times.append(now())
        self.tokens.append(value.reshape(-1).tolist())

    def end(self):
        pass


def load(engine, directory, threads, spinning):
    import torch
    torch.set_num_threads(threads)
    if engine == "transformers":
        from transformers import GPTNeoForCausalLM
        return GPTNeoForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    import onnxruntime
    from optimum.onnxruntime import ORTModelForCausalLM
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ORTModelForCausalLM.from_pretrained(directory, session_options=options, provider="CPUExecutionProvider")


def generate(model, prompts, new_tokens, clock=None):
    import torch
    ids = torch.tensor(prompts, dtype=torch.long)
    with torch.inference_mode():
        return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                              min_new_tokens=new_tokens, do_sample=False, eos_token_id=None,
                              pad_token_id=0, streamer=clock)


def timed_run(model, prompts, new_tokens):
    clock = StepClock()
    cpu0, start = own_cpu_seconds(), now()
    output = generate(model, prompts, new_tokens, clock)
    seconds, cpu = now() - start, own_cpu_seconds() - cpu0
    steps = clock.times
    assert output.shape == (len(prompts), len(prompts[0]) + new_tokens), output.shape
    gaps = [b - a for a, b in zip(steps, steps[1:])]
    return StreamRun(streams=len(prompts), tokens=len(prompts) * new_tokens, seconds=seconds, cpu_seconds=cpu,
                     first_token_seconds=[steps[0] - start] * len(prompts),
                     inter_token_seconds=gaps * len(prompts),
                     outputs=output[:8, len(prompts[0]):].tolist())


def serve_commands(engine, model_directory, plan, tokenizer_directory, spinning, replies):
    """Loads, answers "ready", then one JSON reply per command line: run N, prefill, finish."""
    import torch
    from transformers import GPT2TokenizerFast
    if engine == "onnxruntime":
        import optimum.onnxruntime  # noqa: F401  (before the memory baseline: the interpreter's cost, not the model's)
    tokenizer = GPT2TokenizerFast.from_pretrained(tokenizer_directory)
    rss_before = rss_bytes()
    start = now()
    model = load(engine, model_directory, plan.threads, spinning)
    generate(model, [plan.prompts[0]], 1)
    load_seconds = now() - start
    rss_loaded = rss_bytes()

    def reply(value):
        replies.write(json.dumps(value) + "\n")
        replies.flush()

    reply({"ready": True})
    for line in sys.stdin:
        command = json.loads(line)
        if "run" in command:
            prompts = plan.prompts[:command["run"]]
            generate(model, prompts, plan.warmup_tokens)
            run = timed_run(model, prompts, plan.new_tokens)
            reply(asdict(run) | {"outputs_text": [tokenizer.decode(ids, clean_up_tokenization_spaces=False)
                                                  for ids in run.outputs]})
        elif "prefill" in command:
            generate(model, [plan.prefill_prompt], 1)
            prefill = []
            for _ in range(plan.prefill_repeats):
                t0 = now()
                generate(model, [plan.prefill_prompt], 1)
                prefill.append(now() - t0)
            reply({"prefill_seconds": prefill})
        elif "finish" in command:
            import onnxruntime
            import transformers
            reply({"engine": engine,
                   "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                                "onnxruntime": onnxruntime.__version__},
                   "threads": plan.threads,
                   "load_to_ready_seconds": load_seconds,
                   "rss_after_load_bytes": rss_loaded - rss_before,
                   "rss_after_load_process_bytes": rss_loaded,
                   "peak_rss_process_bytes": rss_bytes(field_name="VmHWM"),
                   "interpreter_rss_bytes": rss_before})
            return


class BaselineEngine:
    """bench.py's side: one worker process, started by start(), its replies gathered in result."""

    def __init__(self, name, engine, model, plan_path, tokenizer, log_path, ort_spinning=False):
        self.name = name
        self.command = [sys.executable, os.path.abspath(__file__), "--engine", engine, "--model", model,
                        "--plan", plan_path, "--tokenizer", tokenizer] + (["--ort-spinning"] if ort_spinning else [])
        self.log_path = log_path
        self.result = {"runs": []}

    def _ask(self, command):
        if command is not None:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            with open(self.log_path) as f:
                tail = f.read().strip().splitlines()[-1:]
            raise RuntimeError(f"{self.name} stopped: {tail[0] if tail else 'no output'} (log: {self.log_path})")
        return json.loads(line)

    def start(self):
        self.log = open(self.log_path, "w")
        # OpenMP threads that wait passively: with the default policy, torch's MKL matmuls ran ~50× slower
        # (0.5 against 33 GFLOP/s at 8×768×3072, 2 threads) whenever other processes kept the cores busy.
        environment = os.environ | {"OMP_WAIT_POLICY": "PASSIVE"}
        self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.log, text=True, env=environment)
        self._ask(None)

    @property
    def pid(self):
        return self.process.pid if hasattr(self, "process") and self.process.poll() is None else None

    def run(self, streams):
        run = self._ask({"run": streams})
        self.result["runs"].append(run)
        return run

    def prefill(self):
        # Each round adds its runs; the report takes the median of all.
        self.result.setdefault("prefill_seconds", []).extend(self._ask({"prefill": 1})["prefill_seconds"])

    def finish(self):
        self.result |= self._ask({"finish": 1})
        self.process.wait()

    def stop(self):
        if hasattr(self, "process"):
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.log.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["transformers", "onnxruntime"], required=True)
    parser.add_argument("--model", required=True, help="checkpoint directory (transformers) or ONNX export directory")
    parser.add_argument("--plan", required=True)
    parser.add_argument("--tokenizer", required=True, help="directory with the GPT-2 tokenizer files, to compare texts with our server")
    parser.add_argument("--ort-spinning", action="store_true", help="let ONNX Runtime's idle threads spin (its default)")
    arguments = parser.parse_args()
    # Replies go to the original standard output; anything a library prints goes to standard error.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    serve_commands(arguments.engine, arguments.model, Plan.load(arguments.plan), arguments.tokenizer,
                   arguments.ort_spinning, replies)


if __name__ == "__main__":
    main()
