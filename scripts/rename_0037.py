"""Replay decision 0037's module renames on a checkout that still has the old names.

Usage: python scripts/rename_0037.py [--check]

Moves each module (git mv) if it is still at its old path, then rewrites what names it in
node/, tests/, fuzz/, bench/, scripts/, docs/ (decision records aside: they keep the names
they were written with) and README.md: dotted names, paths with or without `node/`,
`from node.PKG import MODULE` (one line or parenthesized) and the bare `MODULE.` uses
that such an import binds. Quoted log event names (`"enrollment.join"`) are left alone.
Then run `ruff check --fix` and `ruff format` for the import order. With --check, change
nothing and exit 1 listing the files that still name an old module.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MOVES = {
    "node.crypto.enrollment": "node.crypto.linking",
    "node.services.enrollment": "node.services.invites",
    "node.federation.enrollment": "node.federation.enrollment_port",
    "node.store.intake": "node.store.intake_rows",
    "node.federation.intake": "node.federation.intake_port",
    "node.web.server": "node.web.http_server",
}
TREES = ["node", "tests", "fuzz", "bench", "scripts", "docs", "README.md"]


def _path(dotted: str) -> Path:
    return ROOT / (dotted.replace(".", "/") + ".py")


def _rewrite(text: str, is_python: bool) -> str:
    for old, new in MOVES.items():
        pkg, _, mod = old.rpartition(".")
        new_mod = new.rpartition(".")[2]
        folder = pkg.split(".", 1)[1]
        text = re.sub(re.escape(old) + r"(?!\w)", new, text)
        text = re.sub(
            r"(?<![\w/])(node/)?" + re.escape(f"{folder}/{mod}.py"),
            lambda m, f=folder, n=new_mod: (m.group(1) or "") + f"{f}/{n}.py",
            text,
        )

        def one_line(m: re.Match[str], mod: str = mod, new_mod: str = new_mod) -> str:
            names = [n.strip() for n in m.group(2).split(",")]
            names = [new_mod + n[len(mod) :] if n.split(" ")[0] == mod else n for n in names]
            return m.group(1) + ", ".join(names) + m.group(3)

        text = re.sub(
            r"(from " + re.escape(pkg) + r" import )([^\n(]+?)(\s*(?:#[^\n]*)?\n)", one_line, text
        )
        text = re.sub(
            r"from " + re.escape(pkg) + r" import \([^)]*\)",
            lambda m, mod=mod, n=new_mod: re.sub(
                r"(?m)^(\s+)" + mod + r"(,?)$", r"\g<1>" + n + r"\g<2>", m.group(0)
            ),
            text,
        )
        bound = r"from " + re.escape(pkg) + r" import (?:\([^)]*|[^\n]*)\b" + new_mod + r"\b(?! as)"
        if is_python and re.search(bound, text):
            text = re.sub(r"(?<![\w.\"'])" + mod + r"\.(?=\w)", new_mod + ".", text)
    return text


def _files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", *TREES], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    out = []
    for name in listed:
        path = ROOT / name
        parts = Path(name).parts
        if path.suffix not in (".py", ".md") or "_proto" in parts or not path.exists():
            continue
        if parts[:2] == ("docs", "decisions") or path == Path(__file__).resolve():
            continue
        out.append(path)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report, change nothing")
    args = parser.parse_args()
    stale = [old for old in MOVES if _path(old).exists()]
    if args.check and stale:
        print(f"still at the old paths: {', '.join(stale)}", file=sys.stderr)
        return 1
    for old in stale:
        subprocess.run(["git", "mv", str(_path(old)), str(_path(MOVES[old]))], cwd=ROOT, check=True)
    changed = []
    for path in _files():
        text = path.read_text()
        rewritten = _rewrite(text, path.suffix == ".py")
        if rewritten != text:
            changed.append(path.relative_to(ROOT).as_posix())
            if not args.check:
                path.write_text(rewritten)
    if args.check and changed:
        print("still naming an old module: " + ", ".join(changed), file=sys.stderr)
        return 1
    for name in changed:
        print(f"updated {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
