"""CPU a fuzz run costs per input: `python -m fuzz.run --inputs N --json` as a child
process, its user + system time read with getrusage(RUSAGE_CHILDREN), per harness and in
all (milliseconds of CPU per input; the harness's seconds are wall time, as fuzz.run
reports them).

With `--baseline REF` the same run is made from the tree of git revision REF too (its
node/, fuzz/ and migrations/, extracted with `git archive` into a temporary directory: the
repository is only read), the two runs one after the other in the same invocation, so both
see about the same load on a shared machine; the last line gives the ratio of CPU per
input.

Usage (from the repository root):
    python bench/fuzz_cost.py [--inputs 9000] [--seed 0] [--baseline REF]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CURRENT = "this tree"
FOLDERS = ("node", "fuzz", "migrations")


def extract(ref: str, into: Path) -> Path:
    """node/, fuzz/ and migrations/ of git revision `ref`, as files under `into`."""
    archive = into / "tree.tar"
    subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--output", str(archive), ref, *FOLDERS],
        check=True,
    )
    tree = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(tree: Path, inputs: int, seed: int) -> tuple[float, list[dict[str, Any]]]:
    """CPU seconds of one `fuzz.run` from `tree` (`python -m` imports the tree in its
    working directory first), and its per-harness counts."""
    before = _children_cpu()
    ran = subprocess.run(
        [sys.executable, "-m", "fuzz.run", "--inputs", str(inputs), "--seed", str(seed), "--json"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    cpu = _children_cpu() - before
    if ran.returncode not in (0, 1):
        raise SystemExit(f"fuzz.run from {tree} failed ({ran.returncode}): {ran.stderr[-2000:]}")
    # Earlier revisions printed critical log lines on stdout before the report.
    report = ran.stdout[ran.stdout.rindex("[\n") :]
    return cpu, json.loads(report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=9000, help="inputs per run, in all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--baseline", metavar="REF", help="also run git revision REF's harnesses, in turn"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        trees: dict[str, Path] = {}
        if args.baseline:
            trees[args.baseline] = extract(args.baseline, Path(tmp_name))
        trees[CURRENT] = ROOT
        figures: dict[str, float] = {}
        for label, tree in trees.items():
            cpu, report = run(tree, args.inputs, args.seed)
            total = sum(h["inputs"] for h in report)
            crashes = sum(sum(h["crashes"].values()) for h in report)
            figures[label] = cpu * 1000 / total
            print(f"{label}: {total} inputs, {crashes} crashes, {cpu:.1f} s CPU in all")
            for h in report:
                print(
                    f"  {label:10.10s} {h['harness']:12s} {h['inputs']:7d} inputs "
                    f"{h['seconds']:7.1f} s wall"
                )
            print(f"  {label:10.10s} {'all':12s} {figures[label]:7.2f} ms CPU per input")
        if args.baseline:
            was, now = figures[args.baseline], figures[CURRENT]
            print(f"ms CPU per input: {was:.2f} -> {now:.2f}  x{now / was:.2f}")


if __name__ == "__main__":
    main()
