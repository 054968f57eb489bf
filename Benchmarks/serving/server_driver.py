"""Runs gptneo-server on a free loopback port and drives it with concurrent streaming completions.

Each stream is one HTTP/1.1 connection (opened before the clock starts) sending a streamed
`POST /v1/completions` with token-id prompts, `temperature: 0`, `ignore_eos: true` and a fixed
`max_tokens`, as an OpenAI client would. A stream's tokens are counted from the `usage` chunk that
`stream_options.include_usage` asks for; times are taken when each SSE event arrives. An event carries
one token's text, except that the server holds back a token whose bytes do not yet form a character,
so inter-token gaps are measured between text-bearing events (as vLLM's benchmark_serving does).
"""
import http.client
import json
import os
import re
import statistics
import subprocess
import threading
import time

from workload import StreamRun, now, own_cpu_seconds, process_cpu_seconds, rss_bytes


class ServerError(RuntimeError):
    pass


class Server:
    """One gptneo-server process; its stderr goes to a log file in the output directory."""

    def __init__(self, binary, model, extra_arguments, log_path):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.started = now()
        self.process = subprocess.Popen(
            [binary, "--model", model, "--host", "127.0.0.1", "--port", "0", *extra_arguments],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.port = self._wait_for_port()
        self.load_to_ready_seconds = self._wait_until_ready()

    def _log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def _fail(self, what):
        self.stop()
        lines = [line for line in self._log_text().splitlines() if line.strip()]
        raise ServerError(f"{what}: {lines[-1] if lines else 'no output'}")

    def _wait_for_port(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            # "listening host=127.0.0.1 port=N" (earlier builds: "listening on http://127.0.0.1:N").
            match = re.search(r"listening (?:on http://127\.0\.0\.1:|host=127\.0\.0\.1 port=)(\d+)", self._log_text())
            if match:
                return int(match.group(1))
            if self.process.poll() is not None:
                self._fail("the server exited before listening")
            time.sleep(0.005)
        self._fail("the server did not listen within a minute")

    def _wait_until_ready(self, timeout=600):
        deadline = time.time() + timeout
        # The log's "ready:" line first, then /readyz: polling /readyz every few milliseconds from the
        # start made the loading server accept, answer and log some 200 requests, on the two cores whose
        # load time is being measured.
        while time.time() < deadline and "ready: serving" not in self._log_text():
            if self.process.poll() is not None:
                self._fail("the server exited while loading")
            time.sleep(0.002)
        while time.time() < deadline:
            if self.process.poll() is not None:
                self._fail("the server exited while loading")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200:
                    return now() - self.started
            except OSError:
                pass
            time.sleep(0.005)
        self._fail("the server was not ready within ten minutes")

    @property
    def pid(self):
        return self.process.pid

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.log.closed:
            self.log.close()


def completion_body(prompt, max_tokens):
    return json.dumps({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True,
                       "ignore_eos": True, "stream_options": {"include_usage": True}})


class Stream(threading.Thread):
    """One client: connects, waits for the start signal, sends its request and timestamps every event."""

    def __init__(self, port, prompt, max_tokens, start_signal):
        super().__init__(daemon=True)
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.connection.connect()
        self.body = completion_body(prompt, max_tokens)
        self.start_signal = start_signal
        self.sent = self.finished = None
        self.event_times, self.text, self.tokens, self.error = [], [], 0, None

    def run(self):
        try:
            self.start_signal.wait()
            self.sent = now()
            self.connection.request("POST", "/v1/completions", body=self.body,
                                    headers={"Content-Type": "application/json"})
            response = self.connection.getresponse()
            if response.status != 200:
                raise ServerError(f"HTTP {response.status}: {response.read()[:300]!r}")
            for line in response:
                if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
                    continue
                event = json.loads(line[6:])
                if event.get("usage"):
                    self.tokens = event["usage"]["completion_tokens"]
                for choice in event.get("choices", []):
                    if choice.get("text"):
                        self.event_times.append(now())
                        self.text.append(choice["text"])
            self.finished = now()
        except Exception as error:  # reported by the caller, which knows the stream count
            self.error = error
        finally:
            self.connection.close()


def timed_run(server, prompts, max_tokens):
    start_signal = threading.Event()
    streams = [Stream(server.port, prompt, max_tokens, start_signal) for prompt in prompts]
    for stream in streams:
        stream.start()
    cpu0, client_cpu0 = process_cpu_seconds(server.pid), own_cpu_seconds()
    start = now()
    start_signal.set()
    for stream in streams:
        stream.join()
    errors = [stream.error for stream in streams if stream.error]
    if errors:
        raise ServerError(f"{len(errors)} of {len(streams)} streams failed; first: {errors[0]}")
    return StreamRun(
        streams=len(prompts), tokens=sum(stream.tokens for stream in streams),
        seconds=max(stream.finished for stream in streams) - start,
        cpu_seconds=process_cpu_seconds(server.pid) - cpu0,
        first_token_seconds=[stream.event_times[0] - stream.sent for stream in streams if stream.event_times],
        inter_token_seconds=[b - a for stream in streams for a, b in zip(stream.event_times, stream.event_times[1:])],
        outputs=["".join(stream.text) for stream in streams[:8]], client_cpu_seconds=own_cpu_seconds() - client_cpu0)


class ServerEngine:
    """bench.py's handle on one server configuration, with the same steps as BaselineEngine."""

    def __init__(self, name, binary, model, extra_arguments, plan, log_path):
        self.name, self.binary, self.model, self.extra_arguments = name, binary, model, extra_arguments
        self.plan, self.log_path = plan, log_path
        self.result = {"engine": "gptneo-server", "arguments": extra_arguments, "runs": []}

    def start(self):
        self._start_server()
        self.result |= {"rss_after_load_bytes": rss_bytes(self.server.pid),
                        "rss_after_load_process_bytes": rss_bytes(self.server.pid)}

    def _start_server(self):
        # A warm page cache, as for the baselines, which have read their model just before.
        with open(model_weight_file(self.model), "rb") as f:
            while f.read(1 << 24):
                pass
        self.server = Server(self.binary, self.model, self.extra_arguments, self.log_path)
        samples = self.result.setdefault("load_to_ready_seconds_each", [])
        samples.append(self.server.load_to_ready_seconds)
        self.result["load_to_ready_seconds"] = statistics.median(samples)

    def reload(self, pause_seconds):
        """Stops the server and, `pause_seconds` later, starts it again: one more load-to-ready sample. On
        a virtual machine a load's time is mostly the host backing fresh memory, which varies several-fold
        between starts under the same conditions (README.md), so one start is one draw. The pause lets the
        guest hand the memory the stopped server freed back to the host (free page reporting waits about
        2 s), so that the next start does not reuse pages its predecessor just made cheap."""
        self.server.stop()
        time.sleep(pause_seconds)
        self._start_server()

    @property
    def pid(self):
        return self.server.pid if hasattr(self, "server") and self.server.process.poll() is None else None

    def run(self, streams):
        prompts = self.plan.prompts[:streams]
        timed_run(self.server, prompts, self.plan.warmup_tokens)
        run = timed_run(self.server, prompts, self.plan.new_tokens)
        expected = streams * self.plan.new_tokens
        if run.tokens != expected:
            raise ServerError(f"{streams} streams produced {run.tokens} tokens, not {expected}")
        self.result["runs"].append(run.__dict__)
        return run.__dict__

    def prefill(self):
        runs = [timed_run(self.server, [self.plan.prefill_prompt], 1) for _ in range(self.plan.prefill_repeats + 1)]
        # The first is the warm-up; each round adds its runs, and the report takes the median of all.
        self.result.setdefault("prefill_seconds", []).extend(run.seconds for run in runs[1:])

    def finish(self):
        self.result["peak_rss_process_bytes"] = rss_bytes(self.server.pid, "VmHWM")
        self.server.stop()

    def stop(self):
        if hasattr(self, "server"):
            self.server.stop()


def supported_options(binary):
    """The long options the server's --help lists: what this build can be asked for."""
    output = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", output))


def model_weight_file(directory):
    names = sorted(name for name in os.listdir(directory) if name.endswith(".safetensors"))
    return os.path.join(directory, names[0])
