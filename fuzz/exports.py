"""Audit export files as an auditor receives them (from a node, a colleague, a USB stick),
fed to the offline verifier (node.ledger.verify.verify_export, as `audit verify FILE`
reads them: lines of bytes) and, one input in eight, to `lapor-node audit verify FILE
--json` itself, in process.

The exports start from a real one: a province linked to a regency, with complaints
submitted, verified and referred (so the ledger holds link agreements, envelopes and
checkpoints). Mutations: lines deleted, duplicated, swapped, truncated or inserted; a
field of a line's JSON replaced by edge values of every JSON type (deep nesting
included); an entry's bytes damaged with its leaf hash recomputed (so the checks after
the leaf are reached); a checkpoint note's text damaged; bytes that are not UTF-8.

The only acceptable outcomes: a report, or a NodeError (an AuditFailure naming a
finding, or a ValidationError for a bad --trust key); from the command, exit 0 or 1 with
one JSON object on stdout.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import strategies as st

from fuzz._harness import Harness
from fuzz._nodes import linked_pair
from fuzz._values import edge_ints, short_bytes, texts
from node.cli.main import cli
from node.complaints import ComplaintDraft
from node.ledger.export import vkey_for
from node.ledger.verify import verify_export
from node.services import audit, complaints, lifecycle

__all__ = ["HARNESS", "CommandCrashError"]

COMPLAINTS = 3


class CommandCrashError(Exception):
    """`audit verify FILE --json` ended other than with exit 0 or 1 and one JSON object."""


@dataclass(frozen=True)
class Export:
    lines: tuple[bytes, ...]
    vkey: str
    national: str
    file: Path


@contextlib.contextmanager
def _export(folder: Path) -> Iterator[Export]:
    with linked_pair(folder) as pair:
        province = pair.parent
        for n in range(COMPLAINTS):
            draft = ComplaintDraft(
                title=f"Jalan rusak {n}",
                description="Lubang besar di jalan poros",
                classification="pengaduan",
                category="infrastruktur",
                region_code="64.02",
                channel="walk_in",
            )
            tracking = complaints.submit(province, draft)
            lifecycle.verify(province, tracking)
            complaints.refer(province, tracking, "id-64-02")
        out = io.StringIO()
        audit.export(province, out)
        lines = tuple(line.encode() for line in out.getvalue().splitlines(keepends=True))
        vkey = vkey_for(province.node_id, province.signing_key.public.raw)
        # A national key that reaches nothing here: the chain of trust is the finding.
        national = vkey_for("id", pair.child.signing_key.public.raw)
        yield Export(lines, vkey, national, folder / "export.jsonl")


_JSON_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    1 << 63,
    1 << 64,
    1e308,
    -0.0,
    "",
    "=",
    "AAAA",
    "!!!",
    [],
    {},
    [[[]]],
    {"type": "entry"},
]
_DEEP = "[" * 100_000 + "]" * 100_000
_FIELDS = [
    "type",
    "index",
    "entry",
    "leaf",
    "size",
    "note",
    "entries",
    "checkpoints",
    "node_id",
    "vkey",
    "signing_public_key",
    "current_vkey",
    "trust_chain",
    "exported_at",
    "version",
    "format",
]


def _edit_json(line: bytes, field: str, value: Any, drop: bool) -> bytes:
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return line
    if not isinstance(obj, dict):
        return line
    if drop:
        obj.pop(field, None)
    else:
        obj[field] = value
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def _damage_entry(line: bytes, damage: bytes, at: int, cut: int | None) -> bytes:
    """The entry's bytes damaged, its leaf recomputed (the verifier then parses it)."""
    try:
        obj = json.loads(line)
        entry = base64.b64decode(obj["entry"])
    except (ValueError, KeyError, TypeError, RecursionError):
        return line
    at = at % (len(entry) + 1)
    entry = entry[:at] + damage + entry[at + len(damage) :]
    if cut is not None:
        entry = entry[: cut % (len(entry) + 1)]
    obj["entry"] = base64.b64encode(entry).decode()
    obj["leaf"] = base64.b64encode(hashlib.sha256(b"\x00" + entry).digest()).decode()
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def _damage_note(line: bytes, text: str, at: int) -> bytes:
    try:
        obj = json.loads(line)
        note = str(obj["note"])
    except (ValueError, KeyError, TypeError, RecursionError):
        return line
    at = at % (len(note) + 1)
    obj["note"] = note[:at] + text + note[at + len(text) :]
    return (json.dumps(obj) + "\n").encode("utf-8", "surrogatepass")


# Built once (see fuzz._values).
_EDITS = st.integers(1, 3)
_KIND = st.sampled_from(["field", "field", "entry", "entry", "note", "lines", "bytes", "insert"])
_WHERE = st.integers(0, 1 << 16)
_VALUE = st.one_of(
    st.sampled_from(_JSON_VALUES),
    st.just(_DEEP),
    edge_ints(),
    texts(60),
    short_bytes(40).map(lambda b: base64.b64encode(b).decode()),
)
_FIELD = st.sampled_from(_FIELDS)
_ONE_IN_SIX = st.integers(0, 5)
_ENTRY_DAMAGE = st.binary(min_size=1, max_size=6)
_AT = st.integers(0, 1 << 12)
_CUT = st.one_of(st.none(), st.integers(0, 1 << 12))
_NOTE_AT = st.integers(0, 1 << 10)
_LINE_EDIT = st.sampled_from(["delete", "duplicate", "swap", "cut"])
_BYTES = st.binary(min_size=1, max_size=8)
_LINE = st.one_of(
    st.sampled_from(["\n", "{}\n", "[]\n", "null\n", _DEEP + "\n", '{"type":1}\n']),
    texts(80).map(lambda t: t + "\n"),
)
_USE = st.sampled_from(["own", "own", "vkey", "trust", "command"])


@st.composite
def _mutations(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    edits: list[tuple[Any, ...]] = []
    for _ in range(draw(_EDITS)):
        kind = draw(_KIND)
        where = draw(_WHERE)
        if kind == "field":
            value = draw(_VALUE)
            edits.append((kind, where, draw(_FIELD), value, draw(_ONE_IN_SIX) == 0))
        elif kind == "entry":
            edits.append((kind, where, draw(_ENTRY_DAMAGE), draw(_AT), draw(_CUT)))
        elif kind == "note":
            edits.append((kind, where, draw(texts(30)), draw(_NOTE_AT)))
        elif kind == "lines":
            edits.append((kind, where, draw(_LINE_EDIT)))
        elif kind == "bytes":
            edits.append((kind, where, draw(_BYTES)))
        else:
            edits.append((kind, where, draw(_LINE).encode("utf-8", "surrogatepass")))
    use = draw(_USE)
    return [*edits, ("use", use)]


def _apply(lines: list[bytes], edit: tuple[Any, ...]) -> None:
    kind, where = edit[0], edit[1]
    if not lines:
        lines.append(b"")
    n = where % len(lines)
    if kind == "field":
        lines[n] = _edit_json(lines[n], edit[2], edit[3], edit[4])
    elif kind == "entry":
        entries = [i for i, line in enumerate(lines) if line.startswith(b'{"type":"entry"')]
        if entries:
            i = entries[where % len(entries)]
            lines[i] = _damage_entry(lines[i], edit[2], edit[3], edit[4])
    elif kind == "note":
        notes = [i for i, line in enumerate(lines) if line.startswith(b'{"type":"checkpoint"')]
        if notes:
            i = notes[where % len(notes)]
            lines[i] = _damage_note(lines[i], edit[2], edit[3])
    elif kind == "lines":
        how = edit[2]
        if how == "delete":
            del lines[n]
        elif how == "duplicate":
            lines.insert(n, lines[n])
        elif how == "swap":
            m = (where * 7919) % len(lines)
            lines[n], lines[m] = lines[m], lines[n]
        else:
            lines[n] = lines[n][: where % (len(lines[n]) + 1)]
            del lines[n + 1 :]
    elif kind == "bytes":
        line = lines[n]
        at = where % (len(line) + 1)
        lines[n] = line[:at] + edit[2] + line[at + len(edit[2]) :]
    else:
        lines.insert(n, edit[2])


def _command(export: Export, lines: list[bytes]) -> None:
    export.file.write_bytes(b"".join(lines))
    result = CliRunner().invoke(cli, ["audit", "verify", str(export.file), "--json"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    if result.exit_code not in (0, 1):
        raise CommandCrashError(f"exit {result.exit_code}: {result.output[-200:]!r}")
    try:
        json.loads(result.stdout)
    except ValueError as e:
        raise CommandCrashError(f"not one JSON object: {result.stdout[:200]!r}") from e


def _target(export: Export, edits: list[tuple[Any, ...]]) -> None:
    lines = list(export.lines)
    for edit in edits[:-1]:
        _apply(lines, edit)
    use = edits[-1][1]
    if use == "command":
        _command(export, lines)
    elif use == "vkey":
        verify_export(lines, trusted_vkey=export.vkey)
    elif use == "trust":
        verify_export(lines, trust=export.national)
    else:
        verify_export(lines)


HARNESS = Harness("exports", _mutations(), _target, _export)
