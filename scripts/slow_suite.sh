#!/usr/bin/env bash
# Run the test suite (or part of it) as on a slow, busy machine: pinned to fewer cores
# with `taskset`, and with busy processes on those cores beside it. The suite must pass
# this way (issue 22): every wait in it is on a condition, bounded by configuration
# (tests/support/waits.py), never by how fast this machine happens to be.
#
# Usage: scripts/slow_suite.sh [--cores LIST] [--hogs N] [-- PYTEST_ARGS...]
#   --cores LIST  CPUs for the suite and the busy processes, as taskset takes them
#                 (default 0: one core)
#   --hogs N      busy processes per core of LIST (default 2: the suite gets about a third
#                 of one core, i.e. it runs several times slower than usual)
#   PYTEST_ARGS   replace `make test`'s selection, e.g. -- tests/fault/test_network.py
# The pytest line is `make test`'s (two workers, a file each). The busy processes are
# this script's children: they end when the suite ends, or after --hog-limit seconds
# (default 3 hours) if this script is killed without a chance to clean up.
set -euo pipefail
cd "$(dirname "$0")/.."

cores=0
hogs=2
hog_limit=10800
while [ $# -gt 0 ]; do
    case "$1" in
        --cores) cores="${2:?--cores needs a CPU list, e.g. 0 or 0,1}"; shift 2 ;;
        --hogs) hogs="${2:?--hogs needs a number}"; shift 2 ;;
        --hog-limit) hog_limit="${2:?--hog-limit needs seconds}"; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "slow_suite.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$hogs" in ''|*[!0-9]*) echo "slow_suite.sh: --hogs must be a whole number, found $hogs" >&2; exit 2 ;; esac

VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "slow_suite.sh: no virtualenv at $VENV: run \`make test\` (or \`make lint\`) once first" >&2
    exit 2
fi
if ! command -v taskset >/dev/null; then
    echo "slow_suite.sh: needs taskset (util-linux) to pin the suite to --cores" >&2
    exit 2
fi
if ! taskset -c "$cores" true 2>/dev/null; then
    echo "slow_suite.sh: cannot pin to CPUs '$cores' on this machine (it has $(nproc))" >&2
    exit 2
fi

# The CPUs of LIST, one a line (taskset -c takes 0,2 or 0-3; count them from the mask).
ncores=$(taskset -c "$cores" "$VENV/bin/python" -c 'import os; print(len(os.sched_getaffinity(0)))')

hog_pids=()
stop_hogs() {
    for pid in "${hog_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${hog_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap stop_hogs EXIT
trap 'exit 130' INT TERM

for _ in $(seq 1 $((hogs * ncores))); do
    taskset -c "$cores" timeout "$hog_limit" sh -c 'while :; do :; done' &
    hog_pids+=("$!")
done

echo "slow_suite.sh: pytest on CPU(s) $cores ($ncores), beside $((hogs * ncores)) busy processes" >&2
started=$(date +%s)
status=0
taskset -c "$cores" "$VENV/bin/python" -m pytest -n 2 --dist loadfile --max-worker-restart=0 "$@" || status=$?
echo "slow_suite.sh: exit $status after $(( $(date +%s) - started )) s" >&2
exit "$status"
