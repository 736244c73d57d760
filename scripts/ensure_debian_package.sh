#!/usr/bin/env bash
# Install a Debian package that some tests need, once. Usage:
#   scripts/ensure_debian_package.sh PACKAGE COMMAND WHAT
# Idempotent: does nothing when COMMAND is on PATH (or is an executable path, or a
# directory the package installs, for a package of sources). Never fails
# the caller: if it cannot install (no root, no network, not Debian), it says so and WHAT
# (the tests that need it) skip with that message, except under CI=true, where they fail.
set -uo pipefail
package="${1:?package}" command="${2:?command}" what="${3:?what}"
found() { command -v "$command" >/dev/null || [ -d "$command" ]; }
if found; then
    echo "$command: $("$command" --version 2>/dev/null | head -n 1 || echo present)"
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "$command: not installed and apt-get not found; $what will skip" >&2
    exit 0
fi
sudo=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo="sudo -n"
    else
        echo "$command: not installed and no root to install it (apt-get install $package);" \
            "$what will skip" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
install() { $sudo apt-get install -y --no-install-recommends "$package" >/dev/null 2>&1; }
if ! install; then
    # The package lists may be missing or stale: refresh them once and try again.
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    if ! install || ! found; then
        echo "$command: apt-get install $package failed; $what will skip" >&2
        exit 0
    fi
fi
echo "$command: installed $("$command" --version 2>/dev/null | head -n 1)"
