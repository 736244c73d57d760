#!/usr/bin/env bash
# Debian's chromium for the dashboard test (tests/integration/test_dashboard.py), installed
# once. Idempotent: does nothing when /usr/bin/chromium exists. Never fails the caller: if
# it cannot install (no root, no network, not Debian), it says so and the test skips with
# that message, except under CI=true, where the test fails instead.
set -uo pipefail
if [ -x /usr/bin/chromium ]; then
    echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "chromium: not installed and apt-get not found; the dashboard test will skip" >&2
    exit 0
fi
sudo=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo="sudo -n"
    else
        echo "chromium: not installed and no root to install it (apt-get install chromium);" \
            "the dashboard test will skip" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; then
    # The package lists may be missing or stale: refresh them once and try again.
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    if ! $sudo apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; then
        echo "chromium: apt-get install chromium failed; the dashboard test will skip" >&2
        exit 0
    fi
fi
echo "chromium: installed $(/usr/bin/chromium --version 2>/dev/null)"
