#!/usr/bin/env bash
# Runs the whole test suite: Swift unit and end-to-end tests, then the client-compatibility checks
# (the official openai client, promtool on /metrics, schemathesis on /openapi.json) against a real
# server on loopback serving the bundled tiny model, then the deployment files' validators
# (hadolint, kubernetes-validate, promtool rules, systemd-analyze: deploy/check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests
# XCTest only: no target uses Swift Testing, whose empty "0 tests" summary would otherwise close the run.
swift test --skip-build --disable-swift-testing
scripts/openai-client-check/run.sh .build/debug/gptneo-server
deploy/check.sh
