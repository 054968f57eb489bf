# Sourced by the shell checks that run gptneo-server on loopback (scripts/openai-client-check/run.sh,
# deploy/check.sh): a work directory removed on exit, a free port, start-and-wait-for-ready, and a
# server that is killed if the script stops early.
work=$(mktemp -d)
server_pid=""
# Extra curl options for the readiness probe (for HTTPS: --cacert, --resolve).
curl_tls=()
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_server BINARY BASE-URL ARGS...: runs BINARY ARGS... (environment as the caller exports it)
# with its output in $work/server.log, waits up to 60 s for BASE-URL/readyz, and sets server_pid.
start_server() {
    local binary=$1 base_url=$2
    shift 2
    "$binary" "$@" >"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 600); do
        if curl -fs "${curl_tls[@]}" "$base_url/readyz" >/dev/null 2>&1; then return 0; fi
        if ! kill -0 "$server_pid" 2>/dev/null; then echo "server exited during startup:"; cat "$work/server.log"; exit 1; fi
        sleep 0.1
    done
    echo "server not ready after 60 s"; cat "$work/server.log"; exit 1
}
