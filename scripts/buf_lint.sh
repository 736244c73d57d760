#!/usr/bin/env bash
# buf lint on protos/ (STANDARD rules). buf comes from the npm package @bufbuild/buf, installed
# once into the virtualenv's folder. Without npm it says so and skips, except under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${VENV:-.venv}/buf"
buf="$tools/node_modules/.bin/buf"
if [ ! -x "$buf" ]; then
    if ! command -v npm >/dev/null; then
        [ "${CI:-}" = "true" ] && { echo "buf lint: npm is needed under CI=true" >&2; exit 1; }
        echo "buf lint: skipped (npm not found; install Node.js to lint protos/)"; exit 0
    fi
    mkdir -p "$tools"
    npm install --no-save --silent --prefix "$tools" @bufbuild/buf@1.75.0 >/dev/null
fi
"$buf" lint protos
echo "buf lint: protos/ clean"
