#!/usr/bin/env bash
# End-to-end checks against a real server on loopback, serving the tiny test checkpoint
# (Tests/Fixtures/tiny-gpt-neo: the checks are about the protocol, and it keeps them fast):
#   1. the official `openai` Python client (check_openai_client.py), with an API key configured;
#   2. `promtool check metrics` on a /metrics scrape taken after that traffic;
#   3. schemathesis against /openapi.json, every endpoint (the fixture task heads are served so that
#      classify, classify-tokens and answer answer too; bounded; skipped with GPTNEO_SKIP_SCHEMATHESIS=1);
#   4. SIGTERM: /readyz turns 503 during the drain delay and the process exits 0;
#   5. a second SIGTERM during the drain exits at once (code 143);
#   6. HTTPS with a certificate made here by openssl: served, TLS 1.1 refused, a bad pair on SIGHUP
#      logged and the current one kept.
# Usage: run.sh PATH-TO-gptneo-server. Needs .venv (scripts/install-deps.sh) and promtool.
set -euo pipefail
cd "$(dirname "$0")/../.."
server_binary=${1:?usage: run.sh PATH-TO-gptneo-server}
python=.venv/bin/python
source scripts/lib/test-server.sh

port=$(free_port)
base="http://127.0.0.1:$port"
key="client-check-key"

# Starts the server in the background (extra arguments are passed on) and waits until it is ready.
start_checked_server() {
    echo "== starting $server_binary on port $port $*"
    GPTNEO_API_KEYS="$key" start_server "$server_binary" "$base" --model Tests/Fixtures/tiny-gpt-neo --port "$port" --heads Tests/Fixtures/heads/heads.json --log-level warning "$@"
}
start_checked_server

# Waits for the server to exit and sets server_code.
wait_server() {
    set +e
    wait "$server_pid"
    server_code=$?
    set -e
    server_pid=""
}

echo "== startup failures: one line on stderr, exit 1"
expect_startup_failure() {
    local expected=$1; shift
    set +e
    "$server_binary" "$@" >"$work/fail.out" 2>"$work/fail.err"
    local code=$?
    set -e
    local lines
    lines=$(grep -c 'gptneo-server: error:' "$work/fail.err" || true)
    if [ "$code" -ne 1 ] || [ "$lines" -ne 1 ] || ! grep -q "$expected" "$work/fail.err"; then
        echo "gptneo-server $*: exit $code, stderr:"; cat "$work/fail.err"; exit 1
    fi
    echo "ok   $* -> $(grep 'gptneo-server: error:' "$work/fail.err")"
}
expect_startup_failure "does not exist" --model "$work/no-such-model" --port 0
mkdir -p "$work/bad-checkpoint" && echo '{' >"$work/bad-checkpoint/config.json"
expect_startup_failure "cannot load the model" --model "$work/bad-checkpoint" --port 0
expect_startup_failure "Address already in use" --port "$port"
# A pytorch_model.bin whose pickle calls os.system: refused by name, and the payload never runs.
# A usable tokenizer beside it: the tokenizer loads first, and the check is about the weights.
mkdir -p "$work/malicious" && cp Tests/Fixtures/checkpoints/bin/config.json "$work/malicious/"
cp Tests/Fixtures/tiny-gpt-neo/vocab.json Tests/Fixtures/tiny-gpt-neo/merges.txt "$work/malicious/"
"$python" - "$work/malicious/pytorch_model.bin" "$work/pwned" <<'PY'
import sys, zipfile
payload = ("cos\nsystem\n(Vtouch %s\ntR." % sys.argv[2]).encode()
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", payload)
PY
expect_startup_failure "refused: the pickle calls os.system" --model "$work/malicious" --port 0
[ ! -e "$work/pwned" ] || { echo "the malicious pickle's payload ran"; exit 1; }
expect_startup_failure "hf download owner/absent" --model owner/absent --port 0
expect_startup_failure "invalid server.port" --port 99999
expect_startup_failure "cannot read the TLS certificate file" --port 0 --tls-cert "$work/none.crt" --tls-key "$work/none.key"
"$server_binary" --help >/dev/null

echo "== a repo id served from a Hugging Face cache (refs/main -> snapshots/<commit>/ symlinks -> blobs)"
hub="$work/hf-home/hub/models--owner--tiny"
commit=0123456789abcdef0123456789abcdef01234567
mkdir -p "$hub/blobs" "$hub/refs" "$hub/snapshots/$commit"
for name in config.json model.safetensors vocab.json merges.txt generation_config.json; do
    cp "Tests/Fixtures/tiny-gpt-neo/$name" "$hub/blobs/$name.blob"
    ln -s "../../blobs/$name.blob" "$hub/snapshots/$commit/$name"
done
printf %s "$commit" >"$hub/refs/main"
cache_port=$(free_port)
HF_HOME="$work/hf-home" "$server_binary" --model owner/tiny --port "$cache_port" --log-level warning >"$work/cache.log" 2>&1 &
cache_pid=$!
for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$cache_port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
models=$(curl -fs "http://127.0.0.1:$cache_port/v1/models" || true)
kill -TERM "$cache_pid"; wait "$cache_pid" || true
echo "$models" | grep -q '"id":"owner/tiny"' || { echo "repo id not served: $models"; cat "$work/cache.log"; exit 1; }
echo "ok   --model owner/tiny with HF_HOME -> /v1/models lists owner/tiny"

echo "== openai client"
"$python" scripts/openai-client-check/check_openai_client.py --base-url "$base/v1" --api-key "$key" --api-key-required

echo "== promtool check metrics"
# An answer the HTTP layer gives on its own (417 for an unknown expectation) is counted too.
[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Expect: the-unexpected' "$base/healthz")" = "417" ] \
    || { echo "Expect: the-unexpected was not answered 417"; exit 1; }
# The same port speaks HTTP/2 to a client that starts with the connection preface.
[ "$(curl -s --http2-prior-knowledge -o /dev/null -w '%{http_version} %{http_code}' "$base/healthz")" = "2 200" ] \
    || { echo "no HTTP/2 answer by prior knowledge (h2c)"; exit 1; }
curl -fs "$base/metrics" >"$work/metrics.txt"
grep -q 'gptneo_http_requests_by_protocol_total{protocol="HTTP/2"}' "$work/metrics.txt" \
    || { echo "no HTTP/2 requests counted in /metrics"; exit 1; }
grep -q 'gptneo_http_requests_total{endpoint="/v1/completions",method="POST",status="200"}' "$work/metrics.txt" \
    || { echo "no completion requests counted in /metrics"; exit 1; }
grep -q 'gptneo_http_requests_total{endpoint="/healthz",method="GET",status="417"}' "$work/metrics.txt" \
    || { echo "the server layer's 417 is not counted in /metrics"; exit 1; }
promtool check metrics <"$work/metrics.txt"
echo "promtool: metrics ok ($(grep -vc '^#' "$work/metrics.txt") samples)"

if [ "${GPTNEO_SKIP_SCHEMATHESIS:-0}" != "1" ]; then
    echo "== schemathesis against /openapi.json"
    curl -fs "$base/openapi.json" >"$work/openapi.json"
    "$python" -m schemathesis.cli run "$work/openapi.json" --url "$base" \
        --header "Authorization: Bearer $key" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --max-examples "${GPTNEO_SCHEMATHESIS_EXAMPLES:-40}" --phases examples,coverage,fuzzing \
        --request-timeout 60 --no-color --suppress-health-check all \
        --seed 1 </dev/null
fi

echo "== graceful shutdown"
kill -TERM "$server_pid"
draining=0
for _ in $(seq 1 50); do
    status=$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz" || true)
    if [ "$status" = "503" ]; then draining=1; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    sleep 0.1
done
wait_server
[ "$server_code" -eq 0 ] || { echo "server exited $server_code after SIGTERM"; cat "$work/server.log"; exit 1; }
[ "$draining" -eq 1 ] || { echo "/readyz never answered 503 while draining"; exit 1; }
echo "server answered /readyz 503 while draining, then exited 0 after SIGTERM"

echo "== second SIGTERM during the drain"
start_checked_server --drain-delay-seconds 30
kill -TERM "$server_pid"
# The first signal is seen once /readyz turns 503; the second one must end the 30 s drain at once.
for _ in $(seq 1 50); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz" || true)" = "503" ] && break
    sleep 0.1
done
started=$(date +%s%N)
kill -TERM "$server_pid"
wait_server
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))
[ "$server_code" -eq 143 ] || { echo "server exited $server_code after a second SIGTERM (expected 143)"; cat "$work/server.log"; exit 1; }
[ "$elapsed_ms" -lt 5000 ] || { echo "server took $elapsed_ms ms to exit after a second SIGTERM"; exit 1; }
grep -q "during the drain: exiting" "$work/server.log" || { echo "the second SIGTERM was not handled by the server"; cat "$work/server.log"; exit 1; }
echo "server exited 143 ${elapsed_ms} ms after a second SIGTERM (drain delay 30 s)"

echo "== HTTPS"
make_pair() { # name
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$work/$1.key" -out "$work/$1.crt" \
        -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
}
make_pair tls
make_pair other
base="https://localhost:$port"
curl_tls=(--cacert "$work/tls.crt" --resolve "localhost:$port:127.0.0.1")
start_checked_server --tls-cert "$work/tls.crt" --tls-key "$work/tls.key"
[ "$(curl -s "${curl_tls[@]}" -o /dev/null -w '%{http_code}' "$base/healthz")" = "200" ] || { echo "no answer over HTTPS"; exit 1; }
if curl -s "${curl_tls[@]}" --tlsv1.0 --tls-max 1.1 -o /dev/null "$base/healthz"; then echo "TLS 1.1 was accepted"; exit 1; fi
[ "$(curl -s "${curl_tls[@]}" --http2 -o /dev/null -w '%{http_version}' "$base/healthz")" = "2" ] || { echo "ALPN did not pick h2"; exit 1; }
[ "$(curl -s "${curl_tls[@]}" --http1.1 -o /dev/null -w '%{http_version}' "$base/healthz")" = "1.1" ] || { echo "no HTTP/1.1 over HTTPS"; exit 1; }
cp "$work/other.key" "$work/tls.key"
kill -HUP "$server_pid"
for _ in $(seq 1 50); do grep -q "keeping the current TLS certificate" "$work/server.log" && break; sleep 0.1; done
grep -q "keeping the current TLS certificate" "$work/server.log" || { echo "a bad pair on SIGHUP was not reported"; cat "$work/server.log"; exit 1; }
[ "$(curl -s "${curl_tls[@]}" -o /dev/null -w '%{http_code}' "$base/healthz")" = "200" ] || { echo "HTTPS stopped after a bad SIGHUP"; exit 1; }
kill -TERM "$server_pid"
wait_server
[ "$server_code" -eq 0 ] || { echo "HTTPS server exited $server_code after SIGTERM"; cat "$work/server.log"; exit 1; }
echo "HTTPS served (ALPN h2 and http/1.1); TLS 1.1 refused; a mismatched key on SIGHUP logged and the current pair kept"
echo "end-to-end checks: ok"
