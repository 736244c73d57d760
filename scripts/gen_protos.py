"""Generate node/_proto/ from protos/ (the only way that code is produced).

Usage: python scripts/gen_protos.py [--out DIR]

protoc writes imports as `from lapor.v1 import x_pb2`; they are rewritten to
`from node._proto.lapor.v1 import x_pb2` so the generated code lives inside the package.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
DEFAULT_OUT = ROOT / "node" / "_proto"
IMPORT = re.compile(r"^from lapor\.v1 import ", re.MULTILINE)


def generate(out: Path) -> None:
    """Regenerate every .proto under protos/ into `out` (replacing what was there)."""
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    well_known = resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-I{PROTOS}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *sources,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        if out.exists():
            shutil.rmtree(out)
        for path in sorted(Path(tmp).rglob("*")):
            if path.is_dir():
                continue
            target = out / path.relative_to(tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(IMPORT.sub("from node._proto.lapor.v1 import ", path.read_text()))
    for folder in (out, out / "lapor", out / "lapor" / "v1"):
        (folder / "__init__.py").write_text(
            '"""Generated from protos/ by scripts/gen_protos.py."""\n'
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    generate(parser.parse_args().out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
