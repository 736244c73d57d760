"""Run every fuzz harness and report what each did.

    python -m fuzz.run --inputs 1000000 --jobs 2   # inputs shared out between harnesses
    python -m fuzz.run --inputs 600 --only join envelopes
    python -m fuzz.run --inputs 1000000 --budget 3600 --json   # stop after an hour

Per harness: inputs tried, refused with one of the project's errors (the documented answer
to bad input), crashes (any other exception, by kind, with examples), seconds spent in it
(summed over jobs). Exit status 1 when anything crashed.

The inputs are fed in chunks (fuzz._harness.Feeder), the harnesses in turn, a chunk each:
a run stopped by --budget has tried every harness about as often, and its counts are
exact. With --jobs N, N processes each take a share of every harness's inputs and draw
them from their own seeds ("seed/job/chunk", so no two jobs draw the same sequence);
their counts are summed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import sys
import time
from collections.abc import Sequence

import structlog

from fuzz import cards, checkpoints, envelopes, exports, intake, join, link, node_yaml, witness
from fuzz._harness import CHUNK, Harness, Outcome, opened, run_harness

__all__ = ["HARNESSES", "main", "run_all"]

HARNESSES: tuple[Harness, ...] = (
    envelopes.HARNESS,
    link.HARNESS,
    intake.HARNESS,
    join.HARNESS,
    cards.HARNESS,
    checkpoints.HARNESS,
    witness.HARNESS,
    exports.HARNESS,
    node_yaml.HARNESS,
)


def _quiet() -> None:
    """Refusals log warnings by design; a fuzz run would print thousands of them. What is
    critical still shows, on stderr (stdout is the report)."""
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(50),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def _share(total: int, parts: int, part: int) -> int:
    return total // parts + (1 if part < total % parts else 0)


def _job(
    names: Sequence[str],
    shares: dict[str, int],
    seed: int,
    job: int,
    jobs: int,
    deadline: float | None,
    chunk: int,
    progress: bool,
) -> list[Outcome]:
    """One job's share of every harness, a chunk of each in turn until done or the
    deadline (time.time()) has passed."""
    _quiet()
    chosen = [h for h in HARNESSES if h.name in names]
    with contextlib.ExitStack() as stack:
        feeders = [stack.enter_context(opened(h)) for h in chosen]
        left = {f.harness.name: _share(shares[f.harness.name], jobs, job) for f in feeders}
        n = 0
        while any(left.values()) and (deadline is None or time.time() < deadline):
            for feeder in feeders:
                name = feeder.harness.name
                if left[name] > 0:
                    fed = feeder.feed(min(chunk, left[name]), f"{seed}/{job}/{n}")
                    left[name] = 0 if fed == 0 else left[name] - fed
            n += 1
            if progress:
                done = sum(f.outcome.inputs for f in feeders)
                kinds = {
                    f"{f.harness.name}: {kind}": count
                    for f in feeders
                    for kind, count in f.outcome.crashes.items()
                }
                print(
                    f"job {job}: round {n}, {done} inputs, {sum(kinds.values())} crashes, "
                    f"{time.strftime('%H:%M:%S', time.gmtime())} UTC"
                    + "".join(f"\n    {count} x {kind}" for kind, count in kinds.items()),
                    file=sys.stderr,
                    flush=True,
                )
    return [f.outcome for f in feeders]


def run_all(
    inputs: int,
    only: Sequence[str] = (),
    seed: int = 0,
    *,
    jobs: int = 1,
    budget: float | None = None,
    chunk: int = CHUNK,
    progress: bool = False,
) -> list[Outcome]:
    chosen = [h.name for h in HARNESSES if not only or h.name in only]
    # The inputs in all, the first harnesses one more when they do not divide evenly.
    shares = {name: max(1, _share(inputs, len(chosen), n)) for n, name in enumerate(chosen)}
    if jobs <= 1 and budget is None and not progress:
        return [run_harness(h, shares[h.name], seed, chunk) for h in HARNESSES if h.name in chosen]
    deadline = None if budget is None else time.time() + budget
    args = [(chosen, shares, seed, job, jobs, deadline, chunk, progress) for job in range(jobs)]
    if jobs <= 1:
        results = [_job(*args[0])]
    else:
        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            results = pool.starmap(_job, args)
    totals = {name: Outcome(name) for name in chosen}
    for outcomes in results:
        for outcome in outcomes:
            totals[outcome.name].add(outcome)
    return list(totals.values())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=6000, help="inputs in total (default 6000)")
    parser.add_argument("--only", nargs="*", default=(), help="harness names to run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="processes (default 1)")
    parser.add_argument(
        "--budget", type=float, help="seconds after which no new chunk starts (counts stay exact)"
    )
    parser.add_argument("--chunk", type=int, default=CHUNK, help="inputs per hypothesis run")
    parser.add_argument("--progress", action="store_true", help="a line per round on stderr")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    args = parser.parse_args(argv)
    names = {h.name for h in HARNESSES}
    unknown = set(args.only) - names
    if unknown:
        parser.error(
            f"no harness {', '.join(sorted(unknown))}; there are {', '.join(sorted(names))}"
        )
    if args.jobs < 1 or args.chunk < 1:
        parser.error("--jobs and --chunk must be at least 1")
    _quiet()
    outcomes = run_all(
        args.inputs,
        args.only,
        args.seed,
        jobs=args.jobs,
        budget=args.budget,
        chunk=args.chunk,
        progress=args.progress,
    )
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "harness": o.name,
                        "inputs": o.inputs,
                        "refused": o.refused,
                        "crashes": dict(o.crashes),
                        "examples": o.examples,
                        "seconds": round(o.seconds, 1),
                    }
                    for o in outcomes
                ],
                indent=2,
            )
        )
    else:
        print(f"{'harness':<12} {'inputs':>8} {'refused':>8} {'crashes':>8} {'seconds':>8}")
        for o in outcomes:
            print(f"{o.name:<12} {o.inputs:>8} {o.refused:>8} {o.crashed:>8} {o.seconds:>8.1f}")
            for kind, count in o.crashes.most_common():
                print(f"    {count:>6} x {kind}")
                for example in o.examples[kind]:
                    print(f"             {example}")
        total = sum(o.inputs for o in outcomes)
        crashed = sum(o.crashed for o in outcomes)
        print(f"{'total':<12} {total:>8} {'':>8} {crashed:>8}")
    return 1 if any(o.crashed for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
