"""serve's start-up check of the complaints changed last against the ledger's replay
(node.services.startup_checks, step 4), the recorded result, and the reports' warning while
the latest check found differences; on both databases."""

from __future__ import annotations

import json
from collections.abc import Callable

import sqlalchemy as sa
from click.testing import CliRunner
from structlog.testing import capture_logs

from node.cli.main import cli
from node.complaints import ComplaintDraft
from node.services import complaints, lifecycle, reports, state_check
from node.services.startup_checks import check_before_serving
from tests.support.nodes import TestNode

NodeFactory = Callable[[str, str], TestNode]

DRAFT = ComplaintDraft(
    title="Air PDAM keruh",
    description="Sudah tiga hari.",
    classification="pengaduan",
    category="air bersih",
    region_code="64.02",
    channel="web",
    reporter_name="Rina",
)


def _node(nodes: NodeFactory) -> tuple[TestNode, list[str]]:
    """A node with three complaints, the last one followed up (the one changed last)."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    ctx = node.ctx()
    made = [complaints.submit(ctx, DRAFT) for _ in range(3)]
    lifecycle.verify(ctx, made[-1])
    lifecycle.follow_up(ctx, made[-1], "diperiksa")
    return node, made


def _sql(node: TestNode, statement: str, **params: object) -> None:
    engine = sa.create_engine(node.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params)
    finally:
        engine.dispose()


def _report_cli(node: TestNode, *extra: str) -> str:
    year = str(node.ctx().clock.now().year)
    result = CliRunner().invoke(
        cli,
        ["report", "--year", year, "--config", str(node.config), *extra],
        prog_name="lapor-node",
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def test_start_with_tables_equal_to_the_ledger_logs_and_records_no_difference(
    nodes: NodeFactory,
) -> None:
    """Untouched: an info line, a recorded result without differences, no warning."""
    node, _ = _node(nodes)
    with capture_logs() as logs:
        check_before_serving(node.ctx())
    assert [e["event"] for e in logs if e["event"].startswith("state.")] == ["state.checked"]
    last = state_check.last_check(node.ctx())
    assert last is not None and last.ok and last.scope == "recent"
    assert reports.report(node.ctx(), node.ctx().clock.now().year).state_warning is None
    assert "WARNING" not in _report_cli(node)


def test_a_forged_status_is_logged_critical_recorded_and_shown_by_the_reports(
    nodes: NodeFactory,
) -> None:
    """The check refuses nothing, logs a critical line naming the complaint, records the
    result; `report` (table and --json) warns until `audit state` passes again."""
    node, made = _node(nodes)
    _sql(node, "UPDATE complaints SET status = 'resolved' WHERE tracking_id = :t", t=made[-1])
    with capture_logs() as logs:
        check_before_serving(node.ctx())  # does not raise
    (critical,) = [e for e in logs if e["log_level"] == "critical"]
    assert critical["event"] == "state.differs_from_ledger"
    assert critical["differences"] == 1
    assert critical["first"] == [
        f"{made[-1]}: status: table says resolved, ledger says in_progress"
    ]
    last = state_check.last_check(node.ctx())
    assert last is not None and last.differences == 1 and made[-1] in last.summary

    table = " ".join(_report_cli(node).split())
    assert "WARNING: the working tables differ from the ledger in 1 place(s)" in table
    assert "lapor-node audit state" in table
    document = json.loads(_report_cli(node, "--format", "json"))
    assert "differ from the ledger" in document["state_warning"]

    # Put right, and checked again: the warning goes.
    _sql(node, "UPDATE complaints SET status = 'in_progress' WHERE tracking_id = :t", t=made[-1])
    result = CliRunner().invoke(
        cli, ["audit", "state", "--config", str(node.config)], prog_name="lapor-node"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(_report_cli(node, "--format", "json"))["state_warning"] is None


def test_the_start_up_check_is_bounded_to_the_complaints_changed_last(
    nodes: NodeFactory,
) -> None:
    """check_recent compares only the complaints changed last (an old forgery is left to
    `audit state`, which replays everything and finds it)."""
    node, made = _node(nodes)
    _sql(node, "UPDATE complaints SET status = 'verified' WHERE tracking_id = :t", t=made[0])
    recent = state_check.check_recent(node.ctx(), limit=1)
    assert recent.ok and recent.complaints == 1
    full = state_check.check_state(node.ctx())
    assert [(d.tracking_id, d.column, d.table, d.ledger) for d in full.differences] == [
        (made[0], "status", "verified", "submitted")
    ]


def test_events_that_hide_where_a_history_begins_are_a_difference_not_a_pass(
    nodes: NodeFactory,
) -> None:
    """The start-up check begins the replay where the events say the histories begin;
    events changed to hide the registration make the replay meet an entry for a
    complaint it never saw registered, which is reported."""
    node, made = _node(nodes)
    _sql(
        node,
        "UPDATE complaint_events SET ledger_index = NULL WHERE tracking_id = :t "
        "AND status = 'submitted'",
        t=made[-1],
    )
    recent = state_check.check_recent(node.ctx(), limit=1)
    assert not recent.ok
    assert {(d.tracking_id, d.column) for d in recent.differences} >= {(made[-1], "ledger")}
