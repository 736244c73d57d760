"""`audit contents` includes the state check, and the dashboard warns while the latest
check found working tables that differ from the ledger's replay (issue 19, item 4): the
forged-status case, as an attacker with write access to the database would make it."""

from __future__ import annotations

import json

import sqlalchemy as sa
from click.testing import CliRunner
from werkzeug.test import Client

from node.cli.main import cli
from node.complaints import ComplaintDraft
from node.services import complaints, lifecycle
from node.web.app import DashboardApp
from tests.conftest import NodeFactory
from tests.support.nodes import TestNode

DRAFT = ComplaintDraft(
    title="Drainase tersumbat",
    description="Air meluap ke jalan setiap hujan.",
    classification="pengaduan",
    category="infrastruktur",
    region_code="64.02",
    channel="web",
    reporter_name="Dewi",
)


def _forge(node: TestNode, tracking_id: str, status: str) -> None:
    engine = sa.create_engine(node.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE complaints SET status = :s WHERE tracking_id = :t"),
                {"s": status, "t": tracking_id},
            )
    finally:
        engine.dispose()


def _contents(node: TestNode, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["audit", "contents", "--config", str(node.config), *extra], prog_name="lapor-node"
    )
    return result.exit_code, result.output


def test_audit_contents_catches_a_forged_status_and_the_dashboard_warns(
    nodes: NodeFactory,
) -> None:
    """A status changed in the table alone fails `audit contents` (naming the complaint and
    both values), the dashboard's overview then shows the state warning, and both clear
    once the table agrees with the ledger again."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    ctx = node.ctx()
    tracking_id = complaints.submit(ctx, DRAFT)
    lifecycle.verify(ctx, tracking_id)
    code, output = _contents(node)
    assert code == 0, output
    assert "0 difference(s)" in output

    _forge(node, tracking_id, "resolved")
    code, output = _contents(node)
    assert code == 1
    assert tracking_id in output and "resolved" in output and "verified" in output
    code, output = _contents(node, "--json")
    document = json.loads(output)
    assert code == 1 and document["ok"] is False and document["state"]["ok"] is False
    assert document["findings"] == []  # the contents themselves still match

    page = Client(DashboardApp(ctx)).get("/?lang=en")
    assert page.status_code == 200
    assert 'data-figure="state-warning"' in page.text
    assert "differ from the ledger" in page.text

    _forge(node, tracking_id, "verified")
    code, output = _contents(node)
    assert code == 0, output
    page = Client(DashboardApp(ctx)).get("/?lang=en")
    assert 'data-figure="state-warning"' not in page.text
