"""Handing a node's administration over (Inspectorate -> Diskominfo in Kutai Kartanegara,
February 2021): the handover is in the ledger, the new operator's credential works, and
the previous one stops working at once, without losing any history."""

from __future__ import annotations

import io
import json
import stat

from sqlalchemy import text

from node._proto.lapor.v1 import ledger_pb2
from node.ledger.audit import verify_export
from node.services import admin, audit
from tests.conftest import NodeFactory

SUBMIT = (
    "complaint",
    "submit",
    "--title",
    "Jalan rusak",
    "--description",
    "Berlubang",
    "--category",
    "infrastruktur",
    "--region",
    "64.02",
    "--channel",
    "walk_in",
    "--json",
)


def _handovers(node) -> list[ledger_pb2.AdministrationHandover]:  # type: ignore[no-untyped-def]
    with node.ctx().db.read() as session:
        rows = session.execute(text("SELECT entry FROM ledger_entries ORDER BY idx")).all()
    entries = [ledger_pb2.LedgerEntry.FromString(bytes(r[0])) for r in rows]
    return [
        e.administration_handed_over.handover
        for e in entries
        if e.WhichOneof("kind") == "administration_handed_over"
    ]


def test_handover_records_it_issues_a_credential_and_revokes_the_old_one(
    nodes: NodeFactory,
) -> None:
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    default = regency.directory / admin.CREDENTIAL_FILE
    assert stat.S_IMODE(default.stat().st_mode) == 0o600
    old_copy = regency.directory / "inspektorat-copy.credential"
    old_copy.write_text(default.read_text())
    first = json.loads(regency.cli(*SUBMIT).stdout)["tracking_id"]

    # The Inspectorate hands over to an operator at Inspektorat first (recorded) ...
    regency.cli(
        "admin", "handover", "--unit", "Inspektorat Kabupaten Kutai Kartanegara",
        "--operator", "Rahmat (Inspektorat)",
    )  # fmt: skip
    # ... and in February 2021 to Diskominfo, whose credential goes to its own file.
    new = regency.directory / "diskominfo.credential"
    out = regency.cli(
        "admin", "handover", "--unit", "Diskominfo Kabupaten Kutai Kartanegara",
        "--operator", "Andi (Diskominfo)", "--credential-out", str(new), "--json",
    )  # fmt: skip
    result = json.loads(out.stdout)
    assert result["previous_unit"] == "Inspektorat Kabupaten Kutai Kartanegara"
    assert stat.S_IMODE(new.stat().st_mode) == 0o600

    # The ledger holds both handovers, in order, with no credential in clear.
    units = [(h.unit, h.previous_unit) for h in _handovers(regency)]
    assert units == [
        ("Inspektorat Kabupaten Kutai Kartanegara", "Kabupaten Kutai Kartanegara"),
        ("Diskominfo Kabupaten Kutai Kartanegara", "Inspektorat Kabupaten Kutai Kartanegara"),
    ]
    with regency.ctx().db.read() as session:
        ledger = b"".join(
            bytes(r[0]) for r in session.execute(text("SELECT entry FROM ledger_entries"))
        )
    assert new.read_text().strip().encode() not in ledger

    # The old credentials no longer work, with a message that says why and what to do.
    for stale in (default, old_copy):
        refused = regency.cli(*SUBMIT, "--credential", str(stale), check=False)
        assert refused.returncode == 1
        assert "was revoked" in refused.stderr and "Andi (Diskominfo)" in refused.stderr
        assert "Traceback" not in refused.stderr
    # The new one does; history from before the handover is still there.
    second = json.loads(regency.cli(*SUBMIT, "--credential", str(new)).stdout)["tracking_id"]
    listed = json.loads(regency.cli("complaint", "list", "--json").stdout)
    assert {first, second} <= {c["tracking_id"] for c in listed}
    shown = json.loads(regency.cli("admin", "show", "--json").stdout)
    assert shown["operator"] == "Andi (Diskominfo)"
    # Every proof still holds.
    out_file = io.StringIO()
    audit.export(regency.ctx(), out_file)
    verify_export(out_file.getvalue().splitlines(keepends=True))


def test_bad_credentials_and_bad_handovers_change_nothing(nodes: NodeFactory) -> None:
    node = nodes("id-64-08", "Kabupaten Kutai Timur")
    garbage = node.directory / "garbage.credential"
    garbage.write_text("lapor-operator1.not-a-real-one\n")
    refused = node.cli(*SUBMIT, "--credential", str(garbage), check=False)
    assert refused.returncode == 1 and "not an operator credential" in refused.stderr
    missing = node.cli(*SUBMIT, "--credential", str(node.directory / "none"), check=False)
    assert missing.returncode == 1 and "cannot read the operator credential" in missing.stderr
    empty = node.cli("admin", "handover", "--unit", " ", "--operator", "x", check=False)
    assert empty.returncode == 1 and "--unit must not be empty" in empty.stderr
    exists = node.directory / "taken.credential"
    exists.write_text("keep me")
    clash = node.cli(
        "admin", "handover", "--unit", "Diskominfo", "--operator", "x",
        "--credential-out", str(exists), check=False,
    )  # fmt: skip
    assert clash.returncode == 1 and "already exists" in clash.stderr
    assert exists.read_text() == "keep me"
    # Nothing was recorded and the original credential still works.
    assert _handovers(node) == []
    node.cli(*SUBMIT)
