#!/usr/bin/env bash
# The cost of HTTP/2: the same trivial endpoint (GET /healthz, 13-byte body) through one
# HTTPBenchServer, by wrk over HTTP/1.1 (128 keep-alive connections) and by h2load over h2c
# (4 connections x 32 concurrent streams: also 128 requests in flight), in alternating rounds.
# h2load comes from Debian's nghttp2-client (not needed by the tests).
# Usage: Benchmarks/http/h2.sh [rounds=5] [seconds=5]
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${1:-5}
SECONDS_PER_ROUND=${2:-5}
PORT=18193
URL="http://127.0.0.1:$PORT/healthz"

command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 1; }
command -v h2load >/dev/null || { echo "h2load not found (apt-get install nghttp2-client)" >&2; exit 1; }
echo "building the release binary..." >&2
swift build -c release --product HTTPBenchServer >&2
.build/release/HTTPBenchServer "$PORT" >/dev/null 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fs "$URL" >/dev/null && break; sleep 0.1; done

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICKS_PER_SECOND=$(getconf CLK_TCK)
per_request() { awk -v t="$1" -v hz="$TICKS_PER_SECOND" -v n="$2" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }'; }

wrk_round() { # → "rps cpu_us_per_request errors"
    local out before after
    before=$(cpu_ticks "$PID")
    out=$(wrk -t1 -c128 -d"${SECONDS_PER_ROUND}s" "$URL")
    after=$(cpu_ticks "$PID")
    echo "$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' <<<"$out") $(per_request $((after - before)) "$(awk '/requests in/ { print $1 }' <<<"$out")")" \
        "$(grep -qE 'Socket errors|Non-2xx' <<<"$out" && echo errors || echo none)"
}
h2load_round() { # → "rps cpu_us_per_request failed+errored+timeout+non-2xx"
    local out before after
    before=$(cpu_ticks "$PID")
    out=$(h2load -t1 -c4 -m32 -D "$SECONDS_PER_ROUND" "$URL")
    after=$(cpu_ticks "$PID")
    echo "$(awk '/^finished in/ { printf "%.0f", $4 }' <<<"$out") $(per_request $((after - before)) "$(awk '/^requests:/ { print $2 }' <<<"$out")")" \
        "$(awk '/^requests:/ { n += $10 + $12 + $14 } /^status codes:/ { n += $5 + $7 + $9 } END { print n }' <<<"$out")"
}
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

wrk -t1 -c128 -d2s "$URL" >/dev/null
h2load -t1 -c4 -m32 -D 2 "$URL" >/dev/null
declare -a W_RPS=() H_RPS=() W_CPU=() H_CPU=()
for round in $(seq "$ROUNDS"); do
    read -r rps cpu errors < <(wrk_round)
    W_RPS+=("$rps"); W_CPU+=("$cpu")
    echo "round $round  HTTP/1.1 wrk     $rps req/s  cpu $cpu us/req  errors: $errors"
    read -r rps cpu errors < <(h2load_round)
    H_RPS+=("$rps"); H_CPU+=("$cpu")
    echo "round $round  h2c     h2load  $rps req/s  cpu $cpu us/req  failed+errored+timeout+non-2xx: $errors"
done
w_rps=$(median "${W_RPS[@]}"); h_rps=$(median "${H_RPS[@]}"); w_cpu=$(median "${W_CPU[@]}"); h_cpu=$(median "${H_CPU[@]}")
echo
echo "GET /healthz (13-byte body), 128 requests in flight, ${SECONDS_PER_ROUND} s rounds, $ROUNDS alternating rounds, medians:"
echo "| protocol (client) | requests/s | server CPU per request (us) |"
echo "| --- | ---: | ---: |"
echo "| HTTP/1.1 (wrk -t1 -c128) | $w_rps | $w_cpu |"
echo "| h2c (h2load -t1 -c4 -m32) | $h_rps | $h_cpu |"
awk -v w="$w_rps" -v h="$h_rps" -v wc="$w_cpu" -v hc="$h_cpu" \
    'BEGIN { printf "ratio h2c/HTTP/1.1: requests/s %.2f, CPU per request %.2f\n", h / w, hc / wc }'
