#!/usr/bin/env bash
# wrk against our trivial endpoint and a minimal Hummingbird server, in the same run, in
# alternating rounds (the machine is shared: alternating spreads any outside load over both).
# Usage: [ACCESS_LOG=1] Benchmarks/http/run.sh [rounds=5] [seconds=5] [connections=32] [wrk threads=1]
# Prints one line per round and a summary table with medians and the ratio ours/Hummingbird.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${1:-5}
SECONDS_PER_ROUND=${2:-5}
CONNECTIONS=${3:-32}
THREADS=${4:-1}
OURS_PORT=18181
HB_PORT=18182

command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 1; }

echo "building release binaries..." >&2
swift build -c release --product HTTPBenchServer >&2
swift build -c release --package-path Benchmarks/http/hummingbird-bench >&2

# ACCESS_LOG=1 turns our access log on (one line per request to /dev/null), as in production.
.build/release/HTTPBenchServer "$OURS_PORT" ${ACCESS_LOG:+--access-log} >/dev/null 2>&1 &
OURS_PID=$!
Benchmarks/http/hummingbird-bench/.build/release/HummingbirdBench "$HB_PORT" >/dev/null 2>&1 &
HB_PID=$!
trap 'kill "$OURS_PID" "$HB_PID" 2>/dev/null || true' EXIT

for port in "$OURS_PORT" "$HB_PORT"; do
    for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
done
# Warm-up (page faults, allocator, Dispatch thread pool).
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "http://127.0.0.1:$OURS_PORT/" >/dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "http://127.0.0.1:$HB_PORT/" >/dev/null

# wrk's latency figures are printed with units (us, ms, s): normalise to milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) print v/1000; else if (v ~ /ms$/) print v+0; else if (v ~ /s$/) print v*1000; else print v }'; }

# CPU time (user + system, in clock ticks) a process has used so far: on a shared machine the
# server's CPU time per request is steadier than requests/s.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICKS_PER_SECOND=$(getconf CLK_TCK)

run() { # name port pid → "rps avg_ms p99_ms cpu_us_per_request errors"
    local out rps avg p99 errors before after requests cpu
    before=$(cpu_ticks "$3")
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_ROUND}s" --latency "http://127.0.0.1:$2/")
    after=$(cpu_ticks "$3")
    requests=$(awk '/requests in/ { print $1 }' <<<"$out")
    cpu=$(awk -v t=$((after - before)) -v hz="$TICKS_PER_SECOND" -v n="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
    avg=$(to_ms "$(awk '/^ +Latency/ { print $2; exit }' <<<"$out")")
    p99=$(to_ms "$(awk '/^ +99%/ { print $2 }' <<<"$out")")
    errors=$(awk '/Socket errors|Non-2xx/ { printf "%s ", $0 }' <<<"$out")
    echo "$rps $avg $p99 $cpu ${errors:-none}"
}

declare -a OURS_RPS HB_RPS OURS_AVG HB_AVG OURS_P99 HB_P99 OURS_CPU HB_CPU
for round in $(seq "$ROUNDS"); do
    read -r rps avg p99 cpu errors < <(run ours "$OURS_PORT" "$OURS_PID")
    OURS_RPS+=("$rps"); OURS_AVG+=("$avg"); OURS_P99+=("$p99"); OURS_CPU+=("$cpu")
    echo "round $round  ours        $rps req/s  avg ${avg} ms  p99 ${p99} ms  cpu ${cpu} us/req  errors: $errors"
    read -r rps avg p99 cpu errors < <(run hummingbird "$HB_PORT" "$HB_PID")
    HB_RPS+=("$rps"); HB_AVG+=("$avg"); HB_P99+=("$p99"); HB_CPU+=("$cpu")
    echo "round $round  hummingbird $rps req/s  avg ${avg} ms  p99 ${p99} ms  cpu ${cpu} us/req  errors: $errors"
done

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
o_rps=$(median "${OURS_RPS[@]}"); h_rps=$(median "${HB_RPS[@]}")
echo
echo "wrk -t$THREADS -c$CONNECTIONS -d${SECONDS_PER_ROUND}s, keep-alive, GET / (13-byte body), $ROUNDS alternating rounds, medians:"
o_cpu=$(median "${OURS_CPU[@]}"); h_cpu=$(median "${HB_CPU[@]}")
echo "| server | requests/s | avg latency (ms) | p99 latency (ms) | server CPU per request (us) |"
echo "| --- | ---: | ---: | ---: | ---: |"
echo "| ours (HTTPServer) | $o_rps | $(median "${OURS_AVG[@]}") | $(median "${OURS_P99[@]}") | $o_cpu |"
echo "| Hummingbird 2.28.1 | $h_rps | $(median "${HB_AVG[@]}") | $(median "${HB_P99[@]}") | $h_cpu |"
awk -v o="$o_rps" -v h="$h_rps" 'BEGIN { printf "ratio ours/Hummingbird, requests/s: %.2f\n", o / h }'
awk -v o="$o_cpu" -v h="$h_cpu" 'BEGIN { printf "ratio Hummingbird/ours, CPU per request: %.2f (above 1: ours uses less)\n", h / o }'
