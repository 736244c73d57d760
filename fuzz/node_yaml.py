"""node.yaml texts as an operator (or a careless script) writes them, fed to the config
loader (node.config.loader.load_config) from a file: the repository's example with lines
deleted, duplicated, swapped or re-indented, values replaced by edge values of every YAML
type, sections replaced by scalars and lists, YAML syntax that the safe loader refuses
(tags, anchors, aliases, merge keys), and bytes that are not UTF-8.

The only acceptable outcomes: a valid config, or a ConfigError whose message is one line
per problem, each naming the file (a multi-line YAML trace or an empty message is a crash
of this harness, as any other exception is).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from hypothesis import strategies as st

from fuzz._harness import Harness
from fuzz._values import texts
from node.config import load_config, render_example
from node.errors import ConfigError

__all__ = ["HARNESS", "MessageShapeError"]

_EXAMPLE = render_example()
_LINES = _EXAMPLE.splitlines()
_KEYED = [n for n, line in enumerate(_LINES) if re.match(r"^\s*[a-z_]+:", line)]

_VALUES = [
    '""',
    "''",
    "~",
    "null",
    "0",
    "-1",
    "1e400",
    "-.inf",
    ".nan",
    "0x10",
    "0o7",
    "1_000",
    "true",
    "yes",
    "2026-12-07",
    "2026-12-07T14:00:00Z",
    "12:30:00",
    "[]",
    "{}",
    "[1, [2, [3]]]",
    "{a: {b: {c: d}}}",
    '"127.0.0.1"',
    '"127.0.0.1:0"',
    '"127.0.0.1:65536"',
    '"[::1]:7464"',
    '":7464"',
    '"host:port"',
    '"sqlite:///"',
    '"sqlite:////dev/null"',
    '"postgresql+psycopg://"',
    '"Asia/Nowhere"',
    '"../../../etc/passwd"',
    '"\\0"',
    '"\\x1b[2J"',
    "!!binary aGVsbG8=",
    "!!python/object:os.system x",
    "&a [*a]",
    "*undefined",
    "<<: {x: 1}",
    "|\n  block\n  text",
    "'" + "9" * 400 + "'",
    "9" * 400,
]


# Whole lines inserted anywhere: keys YAML reads as other types, keys with line breaks,
# complex keys, directives, documents.
_EXTRA = [
    '"a\\nb": 1',
    '"node\\n": {}',
    "? [a, b]\n: 1",
    "? {a: 1}\n: 2",
    "1: one",
    "null: x",
    "true: y",
    "2026-01-01: z",
    "%YAML 1.1",
    "---",
    "...",
    "x: &a [*a]",
    "y: &b {k: *b}",
    "z: !!set {a, b}",
    "<<: [{id: x}]",
]


class MessageShapeError(Exception):
    """A ConfigError whose message is not one line per problem naming the file."""


@contextlib.contextmanager
def _folder(folder: Path) -> Iterator[Path]:
    (folder / "keys").mkdir()
    yield folder / "node.yaml"


def _value_line(line: str, value: str) -> str:
    head, _, _ = line.partition(":")
    return f"{head}: {value}"


# Built once (see fuzz._values); the ranges that depend on the text are hypothesis's
# own cached integers().
_EDITS = st.integers(1, 4)
_KEYED_LINE = st.sampled_from(_KEYED)
_BOOL = st.booleans()
_EDIT = st.sampled_from(
    ["value", "value", "value", "delete", "duplicate", "swap", "indent", "text"]
)
_VALUE = st.one_of(st.sampled_from(_VALUES), texts(40))
_INDENT = st.sampled_from(["", " ", "  ", "    ", "\t"])
_LINE = st.one_of(st.sampled_from(_EXTRA), texts(60))
_ONE_IN_TEN = st.integers(0, 9)
_DAMAGE = st.binary(min_size=1, max_size=8)
_ONE_IN_TWENTY = st.integers(0, 19)


@st.composite
def _texts(draw: st.DrawFn) -> bytes:
    lines = list(_LINES)
    for _ in range(draw(_EDITS)):
        if not lines:
            break
        n = draw(_KEYED_LINE) if draw(_BOOL) else None
        n = min(n if n is not None else draw(st.integers(0, len(lines) - 1)), len(lines) - 1)
        edit = draw(_EDIT)
        if edit == "value":
            lines[n] = _value_line(lines[n], draw(_VALUE))
        elif edit == "delete":
            del lines[n]
        elif edit == "duplicate":
            lines.insert(n, lines[n])
        elif edit == "swap":
            m = draw(st.integers(0, len(lines) - 1))
            lines[n], lines[m] = lines[m], lines[n]
        elif edit == "indent":
            lines[n] = draw(_INDENT) + lines[n].lstrip()
        else:
            lines.insert(n, draw(_LINE))
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    if draw(_ONE_IN_TEN) == 0:  # damage the bytes themselves
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(_DAMAGE) + data[at:]
    if draw(_ONE_IN_TWENTY) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data


def _target(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        load_config(path)
    except ConfigError as e:
        message = str(e)
        lines = message.split("\n")
        if not message or any(not line.strip() for line in lines):
            raise MessageShapeError(f"a blank line in the message {message!r}") from e
        strays = [line for line in lines if not line.startswith(("node.yaml", str(path)))]
        if strays:
            raise MessageShapeError(f"a line that names no file: {strays[0]!r}") from e
        raise


HARNESS = Harness("node_yaml", _texts(), _target, _folder)
