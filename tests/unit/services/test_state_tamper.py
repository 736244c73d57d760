"""The tamper cases of issue 19.4: working columns changed in the database directly, with
no ledger entry, as an attacker with write access would. `lapor-node audit state` names
each one (tracking id, column, the table's value and the ledger's) and exits 1, on both
databases; untouched tables pass. Run in process with click's runner."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from node.cli.main import cli
from node.complaints import ComplaintDraft
from node.services import complaints, lifecycle, state_check
from tests.support.nodes import TestNode, carry, link

NodeFactory = Callable[[str, str], TestNode]

DRAFT = ComplaintDraft(
    title="Puskesmas tutup",
    description="Tutup pada jam layanan.",
    classification="pengaduan",
    category="kesehatan",
    region_code="64.02",
    channel="web",
    reporter_name="Dewi",
)


def _accepted(nodes: NodeFactory) -> tuple[TestNode, TestNode, str]:
    """A province that referred a complaint to a regency, which accepted it (real clock)."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(province, regency)
    tracking_id = complaints.submit(province.ctx(), DRAFT)
    lifecycle.verify(province.ctx(), tracking_id)
    complaints.refer(province.ctx(), tracking_id, regency.node_id)
    carry(province, regency)
    carry(regency, province)
    assert complaints.show(province.ctx(), tracking_id).status == "accepted"
    return province, regency, tracking_id


def _forge(node: TestNode, sql: str, **params: object) -> None:
    """Change the node's database behind its back (not through node.store)."""
    engine = sa.create_engine(node.database_url)
    try:
        with engine.begin() as conn:
            changed = conn.execute(sa.text(sql), params).rowcount
        assert changed == 1
    finally:
        engine.dispose()


def _audit_state(node: TestNode, *extra: str) -> Result:
    return CliRunner().invoke(
        cli, ["audit", "state", "--config", str(node.config), *extra], prog_name="lapor-node"
    )


def _differences(node: TestNode) -> list[dict[str, object]]:
    result = _audit_state(node, "--json")
    assert result.exit_code == 1, result.output
    payload = json.loads(result.stdout)
    assert payload["ok"] is False
    return payload["differences"]  # type: ignore[no-any-return]


def test_untouched_tables_pass_audit_state(nodes: NodeFactory) -> None:
    """With nothing forged, both nodes' tables equal their replays: exit 0, no difference."""
    province, regency, _ = _accepted(nodes)
    for node in (province, regency):
        result = _audit_state(node)
        assert result.exit_code == 0, result.output
        assert "0 difference(s)" in result.stdout


def test_status_forged_from_accepted_to_resolved_is_named(nodes: NodeFactory) -> None:
    """The forged-status case: `audit state` names the tracking id, `resolved` as the
    table's value and `accepted` as the ledger's, in JSON and in text, and exits 1."""
    province, _, tracking_id = _accepted(nodes)
    _forge(
        province,
        "UPDATE complaints SET status = 'resolved' WHERE tracking_id = :t AND status = 'accepted'",
        t=tracking_id,
    )
    assert complaints.show(province.ctx(), tracking_id).status == "resolved"  # nothing else saw it
    assert _differences(province) == [
        {
            "tracking_id": tracking_id,
            "column": "status",
            "table": "resolved",
            "ledger": "accepted",
            "index": None,
        }
    ]
    text = _audit_state(province)
    assert text.exit_code == 1
    assert f"{tracking_id}: status: table says resolved, ledger says accepted" in text.stdout
    assert "1 difference(s)" in text.stderr


@pytest.mark.parametrize(
    ("sql", "column", "table", "ledger"),
    [
        pytest.param(
            "UPDATE complaints SET holder = 'id-64' WHERE tracking_id = :t",
            "holder",
            "id-64",
            "id-64-02",
            id="holder-taken-back",
        ),
        pytest.param(
            "UPDATE complaints SET referred_to = 'id-64-08' WHERE tracking_id = :t",
            "referred_to",
            "id-64-08",
            "id-64-02",
            id="referral-target",
        ),
        pytest.param(
            "UPDATE complaints SET disposed_at = NULL WHERE tracking_id = :t",
            "disposed_at",
            None,
            "set",
            id="deadline-clock-cleared",
        ),
    ],
)
def test_forged_holder_referral_target_and_deadline_are_named(
    nodes: NodeFactory, sql: str, column: str, table: str | None, ledger: str
) -> None:
    """Each forged column is one difference naming the complaint and both values."""
    province, _, tracking_id = _accepted(nodes)
    _forge(province, sql, t=tracking_id)
    (found,) = _differences(province)
    assert found["tracking_id"] == tracking_id
    assert found["column"] == column
    assert found["table"] == table
    if ledger == "set":
        assert found["ledger"] is not None
    else:
        assert found["ledger"] == ledger


def test_a_row_the_ledger_never_recorded_is_named(nodes: NodeFactory) -> None:
    """A complaint row inserted behind the node's back (a copy under a new tracking id)
    is a difference of the whole row: the table has it, the ledger does not."""
    province, _, tracking_id = _accepted(nodes)
    forged = tracking_id[:-1] + "9"
    columns = (
        "origin_node, classification, category, region_code, channel, anonymous, "
        "confidential, needs_inspection, status, holder, received_from, submitted_at, "
        "received_at, updated_at, content_commitment, referred_to, referral_message_id, "
        "verified_at, disposed_at, resolved_at, replied_at"
    )
    _forge(
        province,
        f"INSERT INTO complaints (tracking_id, {columns}) "  # noqa: S608 - test's own text
        f"SELECT :f, {columns} FROM complaints WHERE tracking_id = :t",
        f=forged,
        t=tracking_id,
    )
    assert _differences(province) == [
        {"tracking_id": forged, "column": "row", "table": "present", "ledger": None, "index": None}
    ]


def test_the_replay_in_many_passes_finds_the_same(nodes: NodeFactory) -> None:
    """With room for one complaint per pass, the check partitions the complaints over
    several passes and still finds the forged status, once."""
    province, _, tracking_id = _accepted(nodes)
    others = [complaints.submit(province.ctx(), DRAFT) for _ in range(4)]
    _forge(
        province, "UPDATE complaints SET status = 'resolved' WHERE tracking_id = :t", t=others[2]
    )
    report = state_check.check_state(province.ctx(), per_pass=1, record=False)
    assert report.passes == 5
    assert report.complaints == 5
    assert [(d.tracking_id, d.column, d.table, d.ledger) for d in report.differences] == [
        (others[2], "status", "resolved", "submitted")
    ]
    assert tracking_id not in {d.tracking_id for d in report.differences}
