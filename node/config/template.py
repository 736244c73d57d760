"""The commented node.yaml, rendered from the schema (node.config.schema).

Each key is printed with its default (or the value given) and its field description as a
trailing comment; `note` metadata goes above the key; a section with an `example` is off
unless written, so its example is printed commented out. `init` writes render_config's
text, and the repository's node.yaml is render_example's (a test keeps them identical).
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from node.config import model as m
from node.config.loader import validate
from node.config.schema import Auditor, NodeYaml, Section

__all__ = ["EXAMPLE", "render_config", "render_example"]

_BLOCK_WIDTH = 90  # comment paragraphs stay within this many columns
_WIDTH = 94  # lines with a trailing comment, within this many
_COLUMN = 31  # where trailing comments start at the least ...
_MAX_COLUMN = 37  # ... and at the most, unless a key and value are longer

_HEADER = """\
# lapor-node configuration. Relative paths are relative to this file's folder.
# Reference: README.md, section "Configuration".
"""

_EXAMPLE_HEADER = """\
# lapor-node configuration: a complete example that works as it is.
#   lapor-node init --config node.yaml    # creates keys/ and node.db beside this file
#   lapor-node serve --config node.yaml
# Relative paths are relative to this file's folder.
# Reference: README.md, section "Configuration".
"""

# The repository's node.yaml: a province with its ten regencies and cities.
EXAMPLE: dict[str, Any] = {
    "node": {"id": "id-64", "name": "Provinsi Kalimantan Timur", "timezone": "Asia/Makassar"},
    "server": {"listen": "127.0.0.1:7464"},
    "expected_children": [
        {"id": f"id-64-{code}", "name": name}
        for code, name in [
            ("01", "Kabupaten Paser"),
            ("02", "Kabupaten Kutai Kartanegara"),
            ("03", "Kabupaten Berau"),
            ("07", "Kabupaten Kutai Barat"),
            ("08", "Kabupaten Kutai Timur"),
            ("09", "Kabupaten Penajam Paser Utara"),
            ("11", "Kabupaten Mahakam Ulu"),
            ("71", "Kota Balikpapan"),
            ("72", "Kota Samarinda"),
            ("74", "Kota Bontang"),
        ]
    ],
}


def _comment(text: str, indent: str = "") -> list[str]:
    width = _BLOCK_WIDTH - len(indent) - 2
    return [f"{indent}# {line}" for line in _wrap(text, width)]


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False)


def _scalar(value: object, plain: bool) -> str:
    """A YAML scalar that reads back as `value`: JSON strings are YAML strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value if plain else json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple | list) and not value:
        return "[]"
    if isinstance(value, tuple | list) and all(isinstance(d, dt.date) for d in value):
        return "[" + ", ".join(d.isoformat() for d in value) + "]"
    raise TypeError(f"no rendering for {value!r}")


def _extra(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return dict(extra) if isinstance(extra, dict) else {}


def _keyed(line: str, doc: str, column: int) -> list[str]:
    """`key: value  # doc`, the doc wrapped onto continuation lines under its column."""
    if not doc:
        return [line]
    column = max(column, len(line) + 2)
    parts = _wrap(doc, max(_WIDTH - column - 2, 30))
    lines = [f"{line.ljust(column)}# {parts[0]}"]
    lines += [f"{' ' * column}# {part}" for part in parts[1:]]
    return lines


def _section(name: str, section: BaseModel, context: dict[str, str]) -> list[str]:
    """A section's keys with their values; comments aligned unless a line is too long."""
    rows: list[tuple[list[str], str, str]] = []  # (lines above, key: value, comment)
    for key, info in type(section).model_fields.items():
        extra = _extra(info)
        above = _comment(extra["note"].format(**context), "  ") if "note" in extra else []
        if "commented" in extra:
            value = json.dumps(extra["commented"].format(**context))
            rows.append((above, f"  # {key}: {value}", ""))
            continue
        value = _scalar(getattr(section, key), bool(extra.get("plain")))
        rows.append((above, f"  {key}: {value}", info.description or ""))
    fitting = [len(line) + 2 for _, line, doc in rows if doc and len(line) + 2 <= _MAX_COLUMN]
    column = max([_COLUMN, *fitting])
    lines = [f"{name}:"]
    for above, line, doc in rows:
        lines += above + _keyed(line, doc, column)
    return lines


def _children(children: tuple[m.ExpectedChild, ...]) -> list[str]:
    if not children:
        return ["expected_children: []"]
    lines = ["expected_children:"]
    for child in children:
        if child.name is None:
            lines.append(f"  - {child.node_id}")
        else:
            name = json.dumps(child.name, ensure_ascii=False)
            lines.append(f"  - {{id: {child.node_id}, name: {name}}}")
    return lines


def _render(doc: NodeYaml, header: str) -> str:
    context = {"next": m.port_after(doc.server.listen)}
    blocks: list[list[str]] = []
    for name, info in NodeYaml.model_fields.items():
        value = getattr(doc, name)
        note = _comment(_extra(info).get("note", ""))
        if name == "expected_children":
            blocks.append(note + _children(value))
        elif name == "auditors":
            example = [f"#{line}" for line in Auditor.example.splitlines()]
            blocks.append([*note, "auditors: []", *example])
        elif isinstance(value, Section):
            section = type(value)
            above = _comment(section.comment)
            if section.example:
                commented = [f"# {line}".rstrip() for line in section.example.splitlines()]
                blocks.append(above + commented)
            else:
                blocks.append(above + _section(name, value, context))
    return header + "\n" + "\n\n".join("\n".join(b) for b in blocks) + "\n"


def render_config(
    node_id: str,
    name: str,
    *,
    listen: str = m.ServerConfig.listen,
    database_url: str = "sqlite:///node.db",
    timezone: str = "Asia/Jakarta",
) -> str:
    """The text of a fresh node.yaml (ConfigError, before anything is written, when a
    value would not load: a bad id, listen address or time zone)."""
    raw = {
        "node": {"id": node_id, "name": name, "timezone": timezone},
        "database": {"url": database_url},
        "server": {"listen": listen},
    }
    return _render(validate(raw), _HEADER)


def render_example() -> str:
    """The repository's node.yaml (scripts/gen_node_yaml.py writes it)."""
    return _render(validate(EXAMPLE), _EXAMPLE_HEADER)
