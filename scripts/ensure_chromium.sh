#!/usr/bin/env bash
# Debian's chromium for the dashboard tests (tests/integration/test_dashboard*.py).
exec "$(dirname "$0")/ensure_debian_package.sh" chromium /usr/bin/chromium "the dashboard browser tests"
