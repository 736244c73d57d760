#!/usr/bin/env bash
# promtool (Debian's prometheus package) for the alert-rule tests
# (tests/deploy/test_monitoring_kit.py), installed once. Idempotent: does nothing when
# promtool is on PATH. Never fails the caller: if it cannot install (no root, no network,
# not Debian), it says so and the tests skip with that message, except under CI=true,
# where they fail instead.
set -uo pipefail
if command -v promtool >/dev/null; then
    echo "promtool: $(promtool --version 2>&1 | head -n 1)"
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "promtool: not installed and apt-get not found; the alert-rule tests will skip" >&2
    exit 0
fi
sudo=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo="sudo -n"
    else
        echo "promtool: not installed and no root to install it (apt-get install prometheus);" \
            "the alert-rule tests will skip" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
install() { $sudo apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1; }
if ! install; then
    # The package lists may be missing or stale: refresh them once and try again.
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    if ! install; then
        echo "promtool: apt-get install prometheus failed; the alert-rule tests will skip" >&2
        exit 0
    fi
fi
# The package starts a Prometheus server where an init system runs; the tests need only
# the promtool binary.
echo "promtool: installed $(promtool --version 2>&1 | head -n 1)"
