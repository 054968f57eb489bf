#!/usr/bin/env bash
# The cost of TLS: wrk against the same trivial endpoint over plain HTTP and over HTTPS (two
# HTTPBenchServer processes, one with a certificate made here by openssl), in alternating rounds
# on the same machine. Keep-alive, so the figure is the per-request cost of TLS records; a second
# table opens a new connection per request (wrk -H 'Connection: close'): the cost of handshakes.
# Usage: Benchmarks/http/tls.sh [rounds=5] [seconds=5] [connections=32]
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${1:-5}
SECONDS_PER_ROUND=${2:-5}
CONNECTIONS=${3:-32}
PLAIN_PORT=18191
TLS_PORT=18192

command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 1; }
work=$(mktemp -d)
echo "building the release binary..." >&2
swift build -c release --product HTTPBenchServer >&2
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
    -days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 2>/dev/null

.build/release/HTTPBenchServer "$PLAIN_PORT" >/dev/null 2>&1 &
PLAIN_PID=$!
.build/release/HTTPBenchServer "$TLS_PORT" --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" >/dev/null 2>&1 &
TLS_PID=$!
trap 'kill "$PLAIN_PID" "$TLS_PID" 2>/dev/null || true; rm -rf "$work"' EXIT
for url in "http://127.0.0.1:$PLAIN_PORT/" "https://127.0.0.1:$TLS_PORT/"; do
    for _ in $(seq 50); do curl -fsk "$url" >/dev/null && break; sleep 0.1; done
done

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICKS_PER_SECOND=$(getconf CLK_TCK)
run() { # url pid [extra wrk args] → "rps cpu_us_per_request errors"
    local url=$1 pid=$2 out before after requests; shift 2
    before=$(cpu_ticks "$pid")
    out=$(wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_ROUND}s" "$@" "$url")
    after=$(cpu_ticks "$pid")
    requests=$(awk '/requests in/ { print $1 }' <<<"$out")
    awk -v t=$((after - before)) -v hz="$TICKS_PER_SECOND" -v n="$requests" -v out="$out" \
        'BEGIN { match(out, /Requests\/sec: +[0-9.]+/); rps = substr(out, RSTART + 14, RLENGTH - 14) + 0;
                 errors = (out ~ /Socket errors|Non-2xx/) ? "errors" : "none"; printf "%.0f %.2f %s\n", rps, t / hz * 1e6 / n, errors }'
}
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

for mode in keep-alive close; do
    extra=()
    [ "$mode" = close ] && extra=(-H "Connection: close")
    wrk -t1 -c"$CONNECTIONS" -d2s "${extra[@]}" "http://127.0.0.1:$PLAIN_PORT/" >/dev/null
    wrk -t1 -c"$CONNECTIONS" -d2s "${extra[@]}" "https://127.0.0.1:$TLS_PORT/" >/dev/null
    declare -a P_RPS=() T_RPS=() P_CPU=() T_CPU=()
    for round in $(seq "$ROUNDS"); do
        read -r rps cpu errors < <(run "http://127.0.0.1:$PLAIN_PORT/" "$PLAIN_PID" "${extra[@]}")
        P_RPS+=("$rps"); P_CPU+=("$cpu")
        echo "round $round $mode  http   $rps req/s  cpu $cpu us/req  errors: $errors"
        read -r rps cpu errors < <(run "https://127.0.0.1:$TLS_PORT/" "$TLS_PID" "${extra[@]}")
        T_RPS+=("$rps"); T_CPU+=("$cpu")
        echo "round $round $mode  https  $rps req/s  cpu $cpu us/req  errors: $errors"
    done
    p_rps=$(median "${P_RPS[@]}"); t_rps=$(median "${T_RPS[@]}"); p_cpu=$(median "${P_CPU[@]}"); t_cpu=$(median "${T_CPU[@]}")
    echo
    echo "wrk -t1 -c$CONNECTIONS -d${SECONDS_PER_ROUND}s, $mode, GET / (13-byte body), $ROUNDS alternating rounds, medians:"
    echo "| transport | requests/s | server CPU per request (us) |"
    echo "| --- | ---: | ---: |"
    echo "| HTTP/1.1 | $p_rps | $p_cpu |"
    echo "| HTTP/1.1 over TLS 1.3 | $t_rps | $t_cpu |"
    awk -v p="$p_rps" -v t="$t_rps" -v pc="$p_cpu" -v tc="$t_cpu" \
        'BEGIN { printf "ratio https/http: requests/s %.2f, CPU per request %.2f\n\n", t / p, tc / pc }'
done
