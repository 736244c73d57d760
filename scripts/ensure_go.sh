#!/usr/bin/env bash
# Install Go and Go's own transparency-log packages (golang.org/x/mod: sumdb/tlog,
# sumdb/note) from Debian, for the interoperability test (tests/interop/). Idempotent and
# never failing, like scripts/ensure_debian_package.sh: without them that test skips,
# except under CI=true, where it fails.
set -uo pipefail
here="$(dirname "$0")"
what="the Go tlog interoperability test (tests/interop)"
"$here/ensure_debian_package.sh" golang-go go "$what"
"$here/ensure_debian_package.sh" golang-golang-x-mod-dev \
    /usr/share/gocode/src/golang.org/x/mod/sumdb/tlog "$what"
