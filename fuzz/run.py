"""Run every fuzz harness and report what each did.

    python -m fuzz.run --inputs 1000000      # the inputs are shared out between harnesses
    python -m fuzz.run --inputs 600 --only join envelopes

Per harness: inputs tried, refused with one of the project's errors (the documented answer
to bad input), crashes (any other exception, by kind, with examples). Exit status 1 when
anything crashed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import structlog

from fuzz import cards, checkpoints, envelopes, exports, intake, join, link, node_yaml, witness
from fuzz._harness import Harness, Outcome, run_harness

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
    """Refusals log warnings by design; a fuzz run would print thousands of them."""
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(50),
        cache_logger_on_first_use=False,
    )


def run_all(inputs: int, only: Sequence[str] = (), seed: int = 0) -> list[Outcome]:
    chosen = [h for h in HARNESSES if not only or h.name in only]
    each = max(1, inputs // max(1, len(chosen)))
    return [run_harness(h, each, seed) for h in chosen]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=6000, help="inputs in total (default 6000)")
    parser.add_argument("--only", nargs="*", default=(), help="harness names to run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    args = parser.parse_args(argv)
    names = {h.name for h in HARNESSES}
    unknown = set(args.only) - names
    if unknown:
        parser.error(
            f"no harness {', '.join(sorted(unknown))}; there are {', '.join(sorted(names))}"
        )
    _quiet()
    outcomes = run_all(args.inputs, args.only, args.seed)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "harness": o.name,
                        "inputs": o.inputs,
                        "refused": o.refused,
                        "crashes": dict(o.crashes),
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
