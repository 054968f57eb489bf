"""Two gptneo-server configurations side by side: starts, then served runs, alternated.

    .venv-bench/bin/python Benchmarks/serving/compare_servers.py BINARY MODEL --a=--huge-pages --b=""
        [--rounds 10] [--streams 8,32] [--starts 6] [--pause 3]

Where a change shows in the engine alone but the serving benchmark's rounds spread wider than it,
this answers whether a server notices: both servers stay loaded, and each round runs the same
workload (bench.py's seeded prompts, 64 new tokens after 4 of warm-up) on one and then the other, in
alternating order, so that the host's drift falls on both. Reported: medians of each side and the
median (and range) of the per-round ratios a/b, for tokens/s and the server's CPU time per token.
With --starts, each configuration is first started and stopped that many times, alternated,
`--pause` seconds apart, timing load to ready as bench.py does.
"""
import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_driver import Server, timed_run  # noqa: E402
from workload import Plan  # noqa: E402


def ratio_text(a, b):
    ratios = [x / y for x, y in zip(a, b)]
    return f"{statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("model")
    parser.add_argument("--a", default="", help="arguments of server a, one shell-quoted string (--a=--flag when it starts with a dash)")
    parser.add_argument("--b", default="", help="arguments of server b")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--streams", default="8,32", help="comma-separated stream counts")
    parser.add_argument("--starts", type=int, default=0, help="timed starts of each before the runs")
    parser.add_argument("--pause", type=float, default=3, help="seconds between timed starts")
    parser.add_argument("--log-dir", default="/tmp")
    arguments = parser.parse_args()
    sides = {"a": shlex.split(arguments.a), "b": shlex.split(arguments.b)}
    logs = {side: str(Path(arguments.log_dir) / f"compare-servers-{side}.log") for side in sides}

    if arguments.starts:
        starts = {side: [] for side in sides}
        for index in range(arguments.starts):
            for side in (["a", "b"] if index % 2 == 0 else ["b", "a"]):
                server = Server(arguments.binary, arguments.model, sides[side], logs[side])
                starts[side].append(server.load_to_ready_seconds)
                server.stop()
                time.sleep(arguments.pause)
        for side in sides:
            print(f"load to ready, {side} ({arguments.__dict__[side]!r}): "
                  f"median {statistics.median(starts[side]):.3f} s, each {[round(s, 3) for s in starts[side]]}")

    streams = [int(count) for count in arguments.streams.split(",")]
    plan = Plan.make([1, max(streams)], 64, 32, 512, 1, 4, 8, 2)
    servers = {side: Server(arguments.binary, arguments.model, sides[side], logs[side]) for side in sides}
    try:
        rates = {(side, count): [] for side in sides for count in streams}
        cpu = {(side, count): [] for side in sides for count in streams}
        for round_index in range(arguments.rounds):
            for count in streams:
                for side in (["a", "b"] if round_index % 2 == 0 else ["b", "a"]):
                    prompts = plan.prompts[:count]
                    timed_run(servers[side], prompts, plan.warmup_tokens)
                    run = timed_run(servers[side], prompts, plan.new_tokens)
                    rates[(side, count)].append(run.tokens / run.seconds)
                    cpu[(side, count)].append(run.cpu_seconds / run.tokens * 1000)
        for count in streams:
            a, b = rates[("a", count)], rates[("b", count)]
            print(f"{count} streams: a {statistics.median(a):.1f}, b {statistics.median(b):.1f} tokens/s, "
                  f"a/b per round {ratio_text(a, b)}; CPU ms per token a {statistics.median(cpu[('a', count)]):.2f}, "
                  f"b {statistics.median(cpu[('b', count)]):.2f}, a/b per round {ratio_text(cpu[('a', count)], cpu[('b', count)])}")
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    main()
