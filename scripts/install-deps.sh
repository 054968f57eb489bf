#!/usr/bin/env bash
# Installs what the build and the tests need and is not yet on the machine (Debian 12).
# Idempotent: a machine that has everything runs no package manager at all.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# openssl (the command) and curl make certificates and drive HTTPS in the TLS tests;
# systemd: systemd-analyze, for deploy/check.sh.
apt_packages=(libopenblas-dev libssl-dev libnghttp2-dev pkg-config curl openssl python3-venv systemd)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# promtool (from Debian's prometheus package) checks the /metrics exposition in scripts/test.sh.
if ! command -v promtool >/dev/null 2>&1; then
    echo "installing: prometheus (for promtool)"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# A virtualenv for the client-compatibility checks (the official openai package, schemathesis) and the
# deployment validators (hadolint, kubernetes-validate). Reinstalled only when a requirements file changes.
requirements=(scripts/openai-client-check/requirements.txt deploy/requirements.txt)
if [ ! -x .venv/bin/python ] || ! cat "${requirements[@]}" | cmp -s - .venv/.requirements-installed; then
    echo "installing: python packages from ${requirements[*]} into .venv"
    python3 -m venv .venv
    for file in "${requirements[@]}"; do .venv/bin/pip install -q --disable-pip-version-check -r "$file"; done
    cat "${requirements[@]}" > .venv/.requirements-installed
fi
