#!/usr/bin/env bash
# Runs the whole test suite: Swift unit and end-to-end tests, the serving benchmark's Python unit tests,
# then the client-compatibility checks (the official openai client, promtool on /metrics, schemathesis on
# /openapi.json) against a real server on loopback serving the tiny test checkpoint, then the deployment
# files' validators (hadolint, kubernetes-validate, promtool rules, systemd-analyze: deploy/check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests
# XCTest only: no target uses Swift Testing, whose empty "0 tests" summary would otherwise close the run.
swift test --skip-build --disable-swift-testing
# The serving benchmark's own logic (Benchmarks/serving/test_*.py: standard library only, no model or engine).
python3 -m unittest discover -s Benchmarks/serving -p 'test_*.py'
scripts/openai-client-check/run.sh .build/debug/gptneo-server
deploy/check.sh
