#!/usr/bin/env bash
# Quick start: install what is missing, build in release mode, serve the bundled default model.
# Extra arguments go to gptneo-server (e.g. --port 8080 or --model DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product gptneo-server
exec .build/release/gptneo-server "$@"
