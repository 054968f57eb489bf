#!/usr/bin/env bash
# Streaming completions over h2c: h2load (4 connections x 32 concurrent streams, 128 requests in
# flight) posts `{"prompt":"Hello","max_tokens":N,"stream":true}` to the real server on the tiny
# fixture checkpoint, so that the figures are about HTTP/2 and the batcher, not the model.
# The same requests over HTTP/1.1 (h2load --h1, 128 connections) are the anchor, in the same run.
# h2load comes from Debian's nghttp2-client (not needed by the tests).
# Usage: Benchmarks/http/h2-completions.sh [requests=2048] [max_tokens=8]
set -euo pipefail
cd "$(dirname "$0")/../.."

REQUESTS=${1:-2048}
MAX_TOKENS=${2:-8}
PORT=18194
BASE="http://127.0.0.1:$PORT"

command -v h2load >/dev/null || { echo "h2load not found (apt-get install nghttp2-client)" >&2; exit 1; }
echo "building the release binary..." >&2
swift build -c release --product gptneo-server >&2
BODY=$(mktemp)
.build/release/gptneo-server --port "$PORT" --model Tests/Fixtures/tiny-gpt-neo >/dev/null 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; rm -f "$BODY"' EXIT
for _ in $(seq 300); do curl -fs "$BASE/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
printf '{"prompt":"Hello","max_tokens":%d,"stream":true}' "$MAX_TOKENS" >"$BODY"

run() { h2load -t1 -n "$REQUESTS" -d "$BODY" -H 'content-type: application/json' "$@" "$BASE/v1/completions" \
    | grep -E '^(finished in|requests:|status codes:|time for request:|time to 1st byte:)'; }
echo "== h2c, 4 connections x 32 streams"
run -c4 -m32
echo "== HTTP/1.1 (h2load --h1), 128 keep-alive connections, the same 128 requests in flight"
run --h1 -c128 -m1
echo "== h2c again"
run -c4 -m32
echo
echo "after the run:"
curl -fsS "$BASE/metrics" | grep -E '^gptneo_(running_sequences|queued_requests|http_requests_by_protocol_total|completion_choices_total)'
