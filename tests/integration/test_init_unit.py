"""Who runs a node from the start (issue 21.3): `init --unit` names the unit in the ledger
(an AdministrationHandedOver entry from nobody) and in `admin show`, and the first handover
names it as the previous unit; without --unit the wording stays "the operator who ran init
(<node name>)" and nothing is recorded until the first handover."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

from sqlalchemy import text

from node._proto.lapor.v1 import ledger_pb2
from node.ledger.audit import verify_export
from node.services import admin, audit
from node.services.context import NodeContext
from tests.support.cli import run_cli

KUKAR = ("id-64-02", "Kabupaten Kutai Kartanegara")
INSPEKTORAT = "Inspektorat Kabupaten Kutai Kartanegara"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """`lapor-node ARGS`, in this process (tests/support/cli.py)."""
    return run_cli(args)


def _init(directory: Path, database_url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return _run(
        "init", "--dir", str(directory), "--id", KUKAR[0], "--name", KUKAR[1],
        "--database-url", database_url, *extra,
    )  # fmt: skip


def _handovers(config: Path) -> list[tuple[int, ledger_pb2.AdministrationHandover]]:
    ctx = NodeContext.open(config)
    try:
        with ctx.db.read() as session:
            rows = session.execute(text("SELECT idx, entry FROM ledger_entries ORDER BY idx"))
            entries = [(int(i), ledger_pb2.LedgerEntry.FromString(bytes(e))) for i, e in rows]
    finally:
        ctx.close()
    return [
        (i, e.administration_handed_over.handover)
        for i, e in entries
        if e.WhichOneof("kind") == "administration_handed_over"
    ]


def test_init_unit_is_in_the_ledger_and_admin_show(database_url: str, tmp_path: Path) -> None:
    """`init --unit` records the unit and "the operator who ran init" in the ledger from
    the start; `admin show` names them; the first handover names the unit as previous; the
    ledger verifies."""
    directory = tmp_path / "kukar"
    assert _init(directory, database_url, "--unit", INSPEKTORAT).returncode == 0
    config = directory / "node.yaml"
    shown = _run("admin", "show", "--config", str(config)).stdout
    assert f"the operator who ran init ({INSPEKTORAT})" in shown
    as_json = json.loads(_run("admin", "show", "--json", "--config", str(config)).stdout)
    assert as_json["unit"] == INSPEKTORAT and as_json["operator"] == admin.INIT_OPERATOR
    [(index, first)] = _handovers(config)
    assert as_json["ledger_index"] == index
    assert (first.unit, first.operator, first.previous_unit) == (
        INSPEKTORAT,
        admin.INIT_OPERATOR,
        "",
    )
    assert first.node_id == KUKAR[0] and len(first.credential_sha256) == 32

    handed = _run(
        "admin", "handover", "--unit", "Diskominfo Kabupaten Kutai Kartanegara",
        "--operator", "Andi (Diskominfo)", "--config", str(config),
    )  # fmt: skip
    assert handed.returncode == 0, handed.stderr
    assert f"from {admin.INIT_OPERATOR} ({INSPEKTORAT})" in handed.stdout
    units = [(h.unit, h.previous_unit) for _, h in _handovers(config)]
    assert units == [
        (INSPEKTORAT, ""),
        ("Diskominfo Kabupaten Kutai Kartanegara", INSPEKTORAT),
    ]
    ctx = NodeContext.open(config)
    try:
        out = io.StringIO()
        audit.export(ctx, out)
    finally:
        ctx.close()
    verify_export(out.getvalue().splitlines(keepends=True))


def test_init_without_unit_keeps_todays_wording(database_url: str, tmp_path: Path) -> None:
    """Without --unit: "the operator who ran init (<node name>)" and no ledger entry."""
    directory = tmp_path / "kukar"
    assert _init(directory, database_url).returncode == 0
    config = directory / "node.yaml"
    shown = _run("admin", "show", "--config", str(config)).stdout
    assert f"the operator who ran init ({KUKAR[1]})" in shown
    assert _handovers(config) == []


def test_init_refuses_a_bad_unit_and_leaves_nothing(database_url: str, tmp_path: Path) -> None:
    """An empty or overlong --unit is refused before anything is written; running init
    again on an existing node with another unit is refused (a handover changes it)."""
    for bad, message in (("   ", "must not be empty"), ("x" * 201, "longer than 200")):
        directory = tmp_path / "bad"
        refused = _init(directory, database_url, "--unit", bad)
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr
        assert not directory.exists()

    directory = tmp_path / "kukar"
    assert _init(directory, database_url, "--unit", INSPEKTORAT).returncode == 0
    config = directory / "node.yaml"
    again = _run("init", "--config", str(config), "--unit", "Diskominfo")
    assert again.returncode == 1 and "admin handover" in again.stderr
    same = _run("init", "--config", str(config), "--unit", INSPEKTORAT)
    assert same.returncode == 0, same.stderr
    assert len(_handovers(config)) == 1
