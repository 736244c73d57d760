"""The committed code in node/_proto/ is exactly what scripts/gen_protos.py makes from protos/."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "node" / "_proto"


def _gen_protos() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("proto") / "_proto"
    _gen_protos().generate(out)
    return _files(out)


def test_generated_file_set_matches(generated: dict[str, bytes]) -> None:
    """Regenerating yields exactly the files committed in node/_proto/, no more, no fewer."""
    assert sorted(generated) == sorted(_files(COMMITTED))


def test_generated_code_is_not_stale(generated: dict[str, bytes]) -> None:
    """Every committed file in node/_proto/ is byte-identical to a fresh regeneration."""
    committed = _files(COMMITTED)
    stale = sorted(name for name in committed if generated.get(name) != committed[name])
    assert stale == [], f"run `python scripts/gen_protos.py`: stale {stale}"


def test_every_proto_is_generated(generated: dict[str, bytes]) -> None:
    """Each protos/**/*.proto has its _pb2, _pb2.pyi and _pb2_grpc module."""
    for proto in sorted((ROOT / "protos").rglob("*.proto")):
        stem = str(proto.relative_to(ROOT / "protos").with_suffix(""))
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            assert stem + suffix in generated


def test_imports_are_rewritten_into_the_package(generated: dict[str, bytes]) -> None:
    """Generated modules import siblings from node._proto.lapor.v1, never top-level lapor.v1."""
    for name, data in generated.items():
        assert b"\nfrom lapor.v1 import" not in data, name
        assert b"\nimport lapor." not in data, name
