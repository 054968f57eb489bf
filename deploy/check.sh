#!/usr/bin/env bash
# Validates everything under deploy/ with the tools the platforms use, and checks it against the
# real server:
#   Dockerfile       hadolint; the build script it runs stages a binary whose linked libraries are
#                    exactly the runtime stage's packages plus the staged Swift runtime
#   kubernetes/      kubernetes-validate --strict for a current Kubernetes; kustomization's resources
#                    exist; the ConfigMap's config passes `gptneo-server --check-config`
#   prometheus/      promtool check rules and promtool test rules
#   every metric named in the alert rules and the Grafana dashboard is exported by /metrics
#   container/       the image's config passes --check-config; healthcheck.sh passes on a live server
#   systemd/         systemd-analyze verify
# Usage: deploy/check.sh (after scripts/install-deps.sh; scripts/test.sh runs both).
set -euo pipefail
cd "$(dirname "$0")/.."
kubernetes_version=1.37.0
venv=.venv/bin
source scripts/lib/test-server.sh
# The configs checked here are named explicitly; an operator's own must not stand in for them.
unset GPTNEO_CONFIG
fail() { echo "deploy check failed: $*" >&2; exit 1; }

echo "== hadolint deploy/Dockerfile"
"$venv/hadolint" deploy/Dockerfile

echo "== image contents: deploy/build-image-root.sh (debug build, the image builds release)"
deploy/build-image-root.sh --configuration debug "$work/image-root" | tail -1
server="$work/image-root/opt/gptneo-server/gptneo-server"
needed=$(tr '\n' ' ' < "$work/image-root/opt/gptneo-server/runtime-packages" | sed 's/ $//')
# The apt-get install line of the runtime stage (the one after FROM debian:bookworm-slim).
installed=$(awk '/^FROM debian:bookworm-slim/ { runtime = 1 } runtime && /apt-get install/ { for (i = 1; i <= NF; i++) if ($i !~ /^-/ && $i != "apt-get" && $i != "install" && $i != "&&" && $i != "\\") print $i }' deploy/Dockerfile | sort -u | tr '\n' ' ' | sed 's/ $//')
[ "$needed" = "$installed" ] || fail "the runtime stage installs '$installed' but the binary needs '$needed'"
echo "ok   runtime packages: $installed"

echo "== kubernetes-validate --strict ($kubernetes_version)"
manifests=()
for f in deploy/kubernetes/*.yaml; do [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f"); done
"$venv/kubernetes-validate" --strict --quiet -k "$kubernetes_version" "${manifests[@]}"
for resource in $(awk '/^resources:/ { in_list = 1; next } in_list && /^  - / { print $2; next } { in_list = 0 }' deploy/kubernetes/kustomization.yaml); do
    [ -f "deploy/kubernetes/$resource" ] || fail "kustomization.yaml lists $resource, which does not exist"
done
echo "ok   ${#manifests[@]} manifests, kustomization resources present"

echo "== config files pass --check-config"
"$venv/python" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["data"]["gptneo-server.yaml"], end="")' \
    deploy/kubernetes/configmap.yaml > "$work/configmap-config.yaml"
# The key directory the ConfigMap names exists only in the pod: stand one in (a flag wins over the file).
mkdir -p "$work/api-keys" && echo "check-key" > "$work/api-keys/client"
for config in config/gptneo-server.yaml deploy/container/gptneo-server.yaml "$work/configmap-config.yaml"; do
    "$server" --check-config --config "$config" --api-keys-file "$work/api-keys" > "$work/check-config.out" \
        || { cat "$work/check-config.out"; fail "$config does not pass --check-config"; }
    echo "ok   $config"
done

echo "== promtool check rules / test rules"
promtool check rules deploy/prometheus/gptneo-server-alerts.yaml
promtool test rules deploy/prometheus/gptneo-server-alerts.test.yaml

echo "== metric names in the rules and the dashboard are exported"
port=$(free_port)
start_server "$server" "http://127.0.0.1:$port" --port "$port" --log-level warning
curl -fs "http://127.0.0.1:$port/metrics" > "$work/metrics.txt" || { cat "$work/server.log"; fail "no /metrics"; }
GPTNEO_PORT=$port deploy/container/healthcheck.sh || fail "deploy/container/healthcheck.sh fails on a live server"
echo "ok   healthcheck.sh"
kill -TERM "$server_pid"; wait "$server_pid" || fail "server did not exit 0 on SIGTERM"; server_pid=""
exported=$(awk '$1 == "#" && $2 == "TYPE" { print $3 }' "$work/metrics.txt" | sort -u)
used=$(grep -ohE '\b(gptneo_[a-z_]+|process_[a-z_]+)' deploy/prometheus/gptneo-server-alerts.yaml deploy/prometheus/gptneo-server-alerts.test.yaml deploy/grafana/gptneo-server.json \
    | sed -E 's/_(bucket|sum|count)$//' | sort -u)
for metric in $used; do
    grep -qx "$metric" <<<"$exported" || fail "$metric is used by an alert or the dashboard but /metrics does not export it"
done
"$venv/python" - deploy/grafana/gptneo-server.json <<'PY'
import json, sys
dashboard = json.load(open(sys.argv[1]))
targets = [t for p in dashboard["panels"] if p["type"] != "row" for t in p["targets"]]
assert targets and all(t["expr"].strip() for t in targets), "a dashboard panel has no query"
PY
echo "ok   $(wc -w <<<"$used") metric names"

echo "== systemd-analyze verify"
# The unit names the installed binary; verify it against the staged one (the only difference).
mkdir -p "$work/systemd"
sed "s#/usr/local/bin/gptneo-server#$server#" deploy/systemd/gptneo-server.service > "$work/systemd/gptneo-server.service"
systemd-analyze verify "$work/systemd/gptneo-server.service" 2> "$work/systemd.err" || { cat "$work/systemd.err"; fail "systemd-analyze verify"; }
[ ! -s "$work/systemd.err" ] || { cat "$work/systemd.err"; fail "systemd-analyze verify warns"; }
echo "ok   deploy/systemd/gptneo-server.service"
echo "deploy checks passed"
