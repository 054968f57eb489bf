#!/usr/bin/env bash
# The serving benchmark in one command: machine ceilings, transformers, ONNX Runtime and gptneo-server
# (over HTTP, streaming) in the same run, on a random GPT-Neo checkpoint of the 125M (or 1.3B) shape.
#
#   scripts/bench.sh [--quick] [--size 125m|1.3b] [--modes float32,int8|all] [--tokens N] [--streams 1,8,32,64]
#                    [--cache DIR] [--output DIR] ...      (--help lists every option)
#
# Installs what it needs (the build's packages through scripts/install-deps.sh, the Python side into
# .venv-bench/), builds the release binaries, makes and caches the models (default ~/.cache/gptneo-server-bench),
# and writes table.md, results.json and tokens-per-second.png to bench-results/DATE-SIZE/ unless --output says
# otherwise. Not part of scripts/test.sh: it takes minutes and its numbers depend on the machine's load.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

# Python packages in their own virtualenv, reinstalled only when the requirements change.
requirements=Benchmarks/serving/requirements.txt
venv=.venv-bench
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$requirements" "$venv/.requirements-installed"; then
    echo "installing: python packages from $requirements into $venv"
    python3 -m venv "$venv"
    # torch: a CPU-only wheel when pip's find-links provide one (PyPI's default wheel also carries CUDA
    # libraries, gigabytes this benchmark never uses); otherwise PyPI's.
    cpu_torch=""
    for links in ${PIP_FIND_LINKS:-} $("$venv/bin/pip" config get global.find-links 2>/dev/null || true); do
        for wheel in "$links"/torch-*+cpu-cp"$("$venv/bin/python" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')"-*.whl; do
            [ -f "$wheel" ] && cpu_torch=$wheel
        done
    done
    "$venv/bin/pip" install -q --disable-pip-version-check "${cpu_torch:-torch}"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/.requirements-installed"
fi

echo "building release binaries..."
swift build -c release --product gptneo-server
swift build -c release --product MachineCeilings
bin=$(swift build -c release --show-bin-path)

size=125m
for ((i = 1; i <= $#; i++)); do
    case "${!i}" in --size) j=$((i + 1)); size=${!j} ;; --size=*) size=${!i#--size=} ;; esac
done
exec "$venv/bin/python" Benchmarks/serving/bench.py \
    --server "$bin/gptneo-server" --ceilings "$bin/MachineCeilings" \
    --cache "${XDG_CACHE_HOME:-$HOME/.cache}/gptneo-server-bench" \
    --output "bench-results/$(date -u +%Y%m%d-%H%M%S)-$size" \
    "$@"
