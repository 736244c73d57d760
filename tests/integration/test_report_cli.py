"""Reports on a real tree, in process, on both databases: the province's figures for its
children come from the status updates that flowed up (Kutai Kartanegara 2020: 21
received, 19 followed up, 90.5%), the CLI prints the same, the backlog lists what is open,
and bad input gets a message, never a traceback or a reporter's name."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import _common
from node.cli.main import cli
from node.clock import FixedClock
from node.complaints import ComplaintDraft
from node.errors import NotFoundError, ValidationError
from node.services import checkpoints, complaints, lifecycle, links, reports, scheduler
from tests.support.built_once import copy_of
from tests.support.cli import run_cli as run_lapor_node
from tests.support.nodes import TestNode, carry, link

NodeFactory = Callable[[str, str], TestNode]

# Monday 2 March 2020, 09:00 WITA (Kalimantan Timur).
START = dt.datetime(2020, 3, 2, 1, 0, tzinfo=dt.UTC)
REPORT_AT = dt.datetime(2020, 4, 30, 2, 0, tzinfo=dt.UTC)  # a Thursday
FAKE_NOW = REPORT_AT.isoformat()
TITLE = "Pungutan liar di loket perizinan Tenggarong"
REPORTER = "Rahmat Hidayat Saputra"
CONTACT = "+62 811-5400-7788"


def _draft(n: int, *, confidential: bool = False) -> ComplaintDraft:
    return ComplaintDraft(
        title=f"{TITLE} #{n}",
        description="Petugas meminta uang tambahan di luar tarif resmi.",
        classification="pengaduan",
        category="pelayanan publik",
        region_code="64.02",
        channel="walk_in",
        reporter_name=REPORTER,
        reporter_contact=CONTACT,
        confidential=confidential,
    )


@dataclasses.dataclass
class ReportTree:
    province: TestNode  # id-64, expects id-64-02, id-64-08 and id-64-11 (never linked)
    kukar: TestNode  # id-64-02: 21 complaints, 1 in progress, 18 resolved, 2 untouched
    kutim: TestNode  # id-64-08: 2 complaints, never followed up
    clock: FixedClock
    kukar_ids: list[str]
    kutim_ids: list[str]
    own_id: str  # submitted at the province, never verified
    confidential_id: str  # one of kukar_ids, accepted and never followed up


def settle(t: ReportTree) -> None:
    pairs = [(t.province, t.kukar), (t.province, t.kutim), (t.kukar, t.province)]
    pairs.append((t.kutim, t.province))
    while sum(carry(a, b) for a, b in pairs):
        pass


def expect_children(node: TestNode) -> None:
    """Write the province's expected children into its node.yaml (as an operator would)."""
    text = node.config.read_text().replace(
        "expected_children: []",
        "expected_children:\n  - id-64-02\n  - id-64-08\n"
        '  - {id: id-64-11, name: "Kabupaten Mahakam Ulu"}',
    )
    node.config.write_text(text)


def build_tree(nodes: NodeFactory) -> ReportTree:
    """The province refers 21 complaints to Kutai Kartanegara and 2 to Kutai Timur on 2
    March 2020; Kutai Kartanegara follows up 19 on Thursday 5 March and resolves 18 on
    Tuesday 10 March; the status updates are carried up; the clock stops on 30 April."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    expect_children(province)
    kukar = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    kutim = nodes("id-64-08", "Kabupaten Kutai Timur")
    clock = FixedClock(START)
    for node in (province, kukar, kutim):
        node.ctx().clock = clock
    link(province, kukar)
    link(province, kutim)
    p = province.ctx()
    kukar_ids = complaints.submit_many(p, [_draft(n, confidential=n == 19) for n in range(21)])
    kutim_ids = complaints.submit_many(p, [_draft(n) for n in range(21, 23)])
    own_id = complaints.submit(p, _draft(23))
    complaints.refer_many(p, kukar_ids, "id-64-02")
    complaints.refer_many(p, kutim_ids, "id-64-08")
    t = ReportTree(
        province, kukar, kutim, clock, list(kukar_ids), list(kutim_ids), own_id, kukar_ids[19]
    )
    settle(t)
    clock.advance(dt.timedelta(days=3))  # Thursday 5 March
    for tracking_id in kukar_ids[:19]:
        lifecycle.follow_up(kukar.ctx(), tracking_id, "Tim inspektorat memeriksa loket")
    clock.advance(dt.timedelta(days=5))  # Tuesday 10 March
    for tracking_id in kukar_ids[:18]:
        lifecycle.resolve(kukar.ctx(), tracking_id, "Petugas diberi sanksi, uang dikembalikan")
    settle(t)
    clock.advance(REPORT_AT - clock.now())
    for node in (province, kukar, kutim):  # nothing left for a scheduler to do
        scheduler.run_due(node.ctx())
    settle(t)
    checkpoints.sign(p)  # every entry covered, for the trail's proofs
    return t


@pytest.fixture
def tree(request: pytest.FixtureRequest, db_kind: str, tmp_path: Path) -> ReportTree:
    """This test's copy of the tree build_tree makes (built once per process and kind)."""
    return copy_of(request, db_kind, tmp_path, build_tree)


def run_cli(node: TestNode, *args: str, now: str = FAKE_NOW) -> subprocess.CompletedProcess[str]:
    """`lapor-node ARGS --config NODE` in process with the clock reading `now`."""
    return run_lapor_node([*args, "--config", str(node.config)], env={"LAPOR_NODE_FAKE_NOW": now})


def child(report: reports.Report, node_id: str) -> reports.ChildFigures:
    return next(c for c in report.children if c.node_id == node_id)


def test_province_figures_per_child_come_from_status_updates(tree: ReportTree) -> None:
    """Kukar 2020: 21 received, 1 in progress + 18 resolved = 19 followed up, 2 not,
    90.5%; Kutai Timur's two are overdue; Mahakam Ulu is expected and not linked."""
    r = reports.report(tree.province.ctx(), 2020, by_child=True)
    kukar = child(r, "id-64-02").figures
    assert (kukar.received, kukar.followed_up, kukar.in_progress, kukar.resolved) == (21, 19, 1, 18)
    assert kukar.not_followed_up == 2
    assert (kukar.follow_up_share.percent, kukar.resolved_share.percent) == (90.5, 85.7)
    assert kukar.referred == 21 and kukar.verified == 21
    # Submitted Monday 2 March; followed up Thursday 5 March; resolved Tuesday 10 March.
    assert kukar.median_days_to_follow_up == 3.0
    assert kukar.median_days_to_resolution == 6.0
    # 2 accepted and never followed up, 1 in progress past its resolve deadline.
    assert kukar.overdue == 3
    kutim = child(r, "id-64-08").figures
    assert (kutim.received, kutim.followed_up, kutim.overdue) == (2, 0, 2)
    assert kutim.follow_up_share.percent == 0.0
    mahulu = child(r, "id-64-11")
    assert (mahulu.linked, mahulu.connected, mahulu.figures.received) == (False, False, 0)
    assert {m.node_id for m in r.missing_children} == {"id-64-02", "id-64-08", "id-64-11"}
    assert (r.expected_children, r.connected_children) == (3, 0)
    assert r.figures.received == 24 and r.figures.followed_up == 19
    assert r.figures.overdue == 6  # and the province's own one, never verified
    assert r.figures.by_month[2] == 24
    # As of the latest status update received from each child (the auto-closes).
    assert child(r, "id-64-02").as_of == REPORT_AT
    assert child(r, "id-64-08").as_of is None


def test_one_child_and_unknown_child(tree: ReportTree) -> None:
    """--child narrows to one subtree; a node that is no child is NotFoundError."""
    r = reports.report(tree.province.ctx(), 2020, child="id-64-08")
    assert [c.node_id for c in r.children] == ["id-64-08"]
    with pytest.raises(NotFoundError, match="id-64-99 is not a child of this node"):
        reports.report(tree.province.ctx(), 2020, child="id-64-99")


def test_report_years_are_checked(tree: ReportTree) -> None:
    """Outside the calendar, in the future, or with no data: a message naming what is."""
    p = tree.province.ctx()
    with pytest.raises(ValidationError, match="no working-day calendar for 2019"):
        reports.report(p, 2019)
    with pytest.raises(ValidationError, match="2021 has not started yet"):
        reports.report(p, 2021)
    tree.clock.advance(dt.timedelta(days=300))  # now in 2021, which has no complaints
    with pytest.raises(NotFoundError, match="from 2020 only: pass --year 2020"):
        reports.report(p, 2021)


def test_backlog_lists_open_complaints_per_child(tree: ReportTree) -> None:
    """Open = not resolved, closed or archived: 3 at kukar, 2 at kutim, 1 here."""
    b = reports.backlog(tree.province.ctx(), 2020, dt.date(2020, 12, 31))
    assert b.open_by_child == {reports.OWN: 1, "id-64-02": 3, "id-64-08": 2}
    assert {i.tracking_id for i in b.items} == set(
        tree.kukar_ids[18:] + tree.kutim_ids + [tree.own_id]
    )
    assert b.today == dt.date(2020, 4, 30) and b.days_left == 245
    assert b.working_days_left is not None and 0 < b.working_days_left < b.days_left
    late = next(i for i in b.items if i.tracking_id == tree.own_id)
    assert late.overdue and late.overdue[0].startswith("verify (due 2020-03-05)")
    with pytest.raises(ValidationError, match="is in the past"):
        reports.backlog(tree.province.ctx(), 2020, dt.date(2020, 4, 29))


def test_cli_json_matches_the_service_and_hides_reporters(tree: ReportTree) -> None:
    """`report --format json` prints the service's document; no output of report or
    backlog, in any format, holds a title, reporter name or contact."""
    for n in (tree.province, tree.kukar, tree.kutim):
        n.close()  # the CLI opens the databases itself
    result = run_cli(tree.province, "report", "--year", "2020", "--by", "child", "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    tree.province.ctx().clock = tree.clock
    expected = reports.to_document(reports.report(tree.province.ctx(), 2020, by_child=True))
    assert printed == expected
    kukar = next(c for c in printed["children"] if c["node_id"] == "id-64-02")
    assert kukar["figures"]["follow_up_share"] == {"count": 19, "of": 21, "percent": 90.5}

    table = run_cli(tree.province, "report", "--year", "2020", "--by", "child")
    assert table.returncode == 0, table.stderr
    assert "90.5% (19/21)" in table.stdout and "id-64-11" in table.stdout

    as_csv = run_cli(tree.province, "report", "--year", "2020", "--by", "child", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["scope"] for r in rows] == ["id-64", "id-64-02", "id-64-08", "id-64-11"]
    assert rows[1]["follow_up_percent"] == "90.5" and rows[1]["not_followed_up"] == "2"

    backlog = run_cli(
        tree.province, "report", "backlog", "--year", "2020", "--deadline", "2020-12-31",
        "--format", "csv",
    )  # fmt: skip
    assert backlog.returncode == 0, backlog.stderr
    items = list(csv.DictReader(io.StringIO(backlog.stdout)))
    assert len(items) == 6 and {r["days_left"] for r in items} == {"245"}
    assert any(r["tracking_id"] == tree.confidential_id for r in items)
    secret = next(r for r in items if r["tracking_id"] == tree.confidential_id)
    assert secret["confidential"] == "true"

    for out in (result.stdout, table.stdout, as_csv.stdout, backlog.stdout):
        for private in (TITLE, REPORTER, CONTACT, "Petugas"):
            assert private not in out


def test_table_has_in_progress_and_says_no_update_yet(
    tree: ReportTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table has the "in progress" column docs/reports.md lists (Kukar: 1), and a
    connected child that never sent a status update is "no update yet", not "-"."""
    monkeypatch.setattr(_common.console, "width", 250)  # one line per row
    p = tree.province.ctx()
    links.mark_connected(p, "id-64-08", True)  # Kutai Timur connected now, never updated
    tree.province.close()
    result = CliRunner().invoke(
        cli,
        ["report", "--year", "2020", "--by", "child", "--config", str(tree.province.config)],
        env={"LAPOR_NODE_FAKE_NOW": FAKE_NOW},
    )
    assert result.exit_code == 0, result.output
    assert "in prog" in result.output and "in prog in_progress" in result.output
    rows = {line.split()[1]: line for line in result.output.splitlines() if "│ id-64" in line}
    kukar_cells = [c.strip() for c in rows["id-64-02"].split("│")]
    assert kukar_cells[4:9] == ["21", "21", "21", "19", "1"]  # recv verif ref f/u in prog
    kutim_cells = [c.strip() for c in rows["id-64-08"].split("│")]
    assert kutim_cells[2:4] == ["connected", "no update yet"]


def test_report_words_a_disconnected_child_as_link_list_does(tree: ReportTree) -> None:
    """A child seen once and gone: `report` names its state in the words of `link list`
    (docs/reports.md: the same states)."""
    p = tree.province.ctx()
    links.mark_connected(p, "id-64-08", True)
    tree.clock.advance(dt.timedelta(hours=3))
    r = reports.report(p, 2020, by_child=True)
    summary = links.link_report(p).summary()
    for m in r.missing_children:
        assert f"{m.node_id} {m.name} ({m.state})" in summary
    kutim = next(m for m in r.missing_children if m.node_id == "id-64-08")
    assert kutim.state == "last seen 2020-04-30 02:00:00 UTC"


def test_group_options_reach_backlog_on_the_right_node(nodes: NodeFactory) -> None:
    """`report --config A --json --year 2020 backlog --deadline D`, run where the default
    node.yaml is another node's, answers about A, in JSON (issue 21.1)."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    for node in (province, regency):
        node.close()
    args = ["report", "--config", str(province.config), "--json", "--year", "2020"]
    result = CliRunner().invoke(
        cli,
        [*args, "backlog", "--deadline", "2020-12-31"],
        env={"LAPOR_NODE_FAKE_NOW": FAKE_NOW, "LAPOR_NODE_CONFIG": str(regency.config)},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["node_id"] == "id-64"
    csv_out = CliRunner().invoke(
        cli,
        ["report", "--format", "csv", "backlog", "--year", "2020", "--deadline", "2020-12-31"],
        env={"LAPOR_NODE_FAKE_NOW": FAKE_NOW, "LAPOR_NODE_CONFIG": str(regency.config)},
    )
    assert csv_out.exit_code == 0, csv_out.output
    assert csv_out.output.startswith("tracking_id,child,status")


LATER = "2021-02-01T09:00:00+08:00"
BACKLOG = ["backlog", "--year", "2020", "--deadline"]


@pytest.mark.parametrize(
    ("args", "now", "message"),
    [
        pytest.param(["--year", "2019"], FAKE_NOW, "no working-day calendar", id="before-calendar"),
        pytest.param(["--year", "2021"], FAKE_NOW, "2021 has not started yet", id="future-year"),
        pytest.param(["--year", "2021"], LATER, "from 2020 only", id="year-without-data"),
        pytest.param([], FAKE_NOW, "say which year", id="no-year"),
        pytest.param(
            ["--year", "2020", "--child", "id-64-99"], FAKE_NOW, "not a child", id="child"
        ),
        pytest.param(["--year", "2020", "--child", "Bad Id"], FAKE_NOW, "node id", id="bad-child"),
        pytest.param([*BACKLOG, "2020-04-01"], FAKE_NOW, "in the past", id="past-deadline"),
        pytest.param([*BACKLOG, "31/12/2020"], FAKE_NOW, "YYYY-MM-DD", id="bad-deadline"),
    ],
)
def test_cli_bad_input_is_a_message(
    nodes: NodeFactory, args: list[str], now: str, message: str
) -> None:
    """Each bad input exits 1 with a message that says what to do, and no traceback."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    node.ctx().clock = FixedClock(START)
    complaints.submit(node.ctx(), _draft(1))  # data in 2020 only
    node.close()
    result = run_cli(node, "report", *args, now=now)
    assert result.returncode == 1, result.stdout
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_empty_node_reports_zeros(nodes: NodeFactory) -> None:
    """A node with no complaints yet: exit 0, every figure zero, and it says so."""
    node = nodes("id-64-11", "Kabupaten Mahakam Ulu")
    result = run_cli(node, "report", "--year", "2020", "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["figures"]["received"] == 0
    assert document["figures"]["follow_up_share"] == {"count": 0, "of": 0, "percent": 0.0}
    assert "no complaints yet" in document["note"]
    table = run_cli(node, "report", "--year", "2020")
    assert table.returncode == 0 and "no complaints yet" in table.stdout
    backlog = run_cli(node, "report", "backlog", "--year", "2020", "--deadline", "2020-12-31")
    assert backlog.returncode == 0 and "0 complaints of 2020 still open" in backlog.stdout


def test_unknown_node_is_a_message(tmp_path: object) -> None:
    """A config that does not exist: the message says how to make a node."""
    argv = ["report", "--year", "2020", "--config", f"{tmp_path}/nowhere/node.yaml"]
    result = run_lapor_node(argv)
    assert result.returncode == 1 and "lapor-node init" in result.stderr
    assert "Traceback" not in result.stderr


def test_trail_has_proofs_and_no_content(tree: ReportTree) -> None:
    """A confidential complaint's trail: its path, its events with verified inclusion
    proofs against the latest checkpoint, and nothing of its content or reporter."""
    t = reports.trail(tree.province.ctx(), tree.confidential_id)
    assert t.confidential and t.nodes == ("id-64", "id-64-02")
    assert t.status == "accepted" and t.holder == "id-64-02"
    proved = [s for s in t.steps if s.ledger_index is not None]
    assert proved and all(s.proof_checked == "verified" for s in proved)
    text = json.dumps(reports.to_document(t))
    for private in (TITLE, REPORTER, CONTACT):
        assert private not in text
    with pytest.raises(NotFoundError):
        reports.trail(tree.province.ctx(), "id-64.2020.999999")


def test_workflow_sample_counts_statuses_and_breaches(tree: ReportTree) -> None:
    """The metrics' reading: every status, overdue complaints and missed deadlines."""
    sample = reports.workflow_sample(tree.province.ctx())
    # The 18 resolved were closed by Kutai Kartanegara's scheduler after the reply period.
    assert sample.by_status["closed"] == 18 and sample.by_status["in_progress"] == 1
    assert sample.by_status["resolved"] == 0
    assert sample.overdue == 6
    assert sample.breaches["verify"] == 1
    assert sample.breaches["first_follow_up"] == 4
