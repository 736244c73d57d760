#!/usr/bin/env bash
# promtool, from Debian's prometheus package, for the alert-rule tests
# (tests/deploy/test_monitoring_kit.py). The package starts a Prometheus server where an
# init system runs; the tests need only the promtool binary.
exec "$(dirname "$0")/ensure_debian_package.sh" prometheus promtool "the alert-rule tests"
