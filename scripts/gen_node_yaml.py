"""Write the repository's node.yaml from the schema (node.config.schema).

Usage: python scripts/gen_node_yaml.py [--check]

node.yaml is generated: edit the schema's descriptions and examples, or the example
values in node.config.template, and run this. With --check, exit 1 (saying so) when the
committed file differs from the rendering instead of writing it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from node.config import render_example

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    target = ROOT / "node.yaml"
    text = render_example()
    if args.check:
        if target.read_text() != text:
            print(f"{target} differs from the schema's rendering: run {sys.argv[0]}")
            return 1
        return 0
    target.write_text(text)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
