"""`complaint list` says when --limit cuts it short, `--limit 0` lists all, and the
operator guide's backlog recipe (list --json | jq | refer --ids-from) refers a backlog of
1,000 complaints, not the first 200 (issue 17.7); in process, on both databases."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from node.cli.main import cli
from node.complaints import ComplaintDraft
from node.services import complaints, lifecycle
from tests.conftest import NodeFactory
from tests.support.nodes import TestNode, link

NOW = "2026-05-04T09:00:00+07:00"
BACKLOG = 1000


def run(node: TestNode, *args: str) -> Result:
    result = CliRunner().invoke(
        cli, [*args, "--config", str(node.config)], env={"LAPOR_NODE_FAKE_NOW": NOW}
    )
    assert result.exit_code == 0, result.output
    return result


def _draft(n: int) -> ComplaintDraft:
    return ComplaintDraft(
        title=f"Lampu jalan padam #{n}",
        description="Sudah sebulan gelap.",
        classification="pengaduan",
        category="infrastruktur",
        region_code="64.02",
        channel="walk_in",
    )


def test_backlog_recipe_refers_all_1000(nodes: NodeFactory, tmp_path: Path) -> None:
    """1,000 verified complaints: the default listing shows 200 and says "of 1000", in
    the table and (on standard error) with --json; --limit 0 lists them all, and the
    recipe refers every one of them."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(province, regency)
    ctx = province.ctx()
    ids = complaints.submit_many(ctx, [_draft(n) for n in range(BACKLOG)])
    with ctx.db.write() as session:  # one commit for the backlog, not one per complaint
        for tracking_id in ids:
            lifecycle.verify_in(session, ctx, tracking_id)
    complaints.submit(ctx, _draft(BACKLOG))  # not verified: not listed below
    province.close()

    table = run(province, "complaint", "list", "--status", "verified").output
    assert f"showing 200 of {BACKLOG} complaints; --limit 0 lists all" in table
    cut = run(province, "complaint", "list", "--status", "verified", "--json")
    assert len(json.loads(cut.stdout)) == 200
    assert f"showing 200 of {BACKLOG} complaints" in cut.stderr
    everything = run(province, "complaint", "list", "--status", "verified", "--limit", "0")
    assert f"{BACKLOG} complaints" in everything.output and "showing" not in everything.output

    # The operator guide's recipe, with jq's `.[].tracking_id` done in Python.
    listed = run(province, "complaint", "list", "--status", "verified", "--limit", "0", "--json")
    assert listed.stderr == ""
    backlog = tmp_path / "backlog.txt"
    backlog.write_text("".join(f"{c['tracking_id']}\n" for c in json.loads(listed.stdout)))
    referred = run(
        province, "complaint", "refer", "--ids-from", str(backlog), "--to", "id-64-02", "--json"
    )
    assert len(json.loads(referred.stdout)["referred"]) == BACKLOG
    left = run(province, "complaint", "list", "--status", "verified", "--limit", "0", "--json")
    assert json.loads(left.stdout) == []
    mine = json.loads(
        run(province, "complaint", "list", "--child", "id-64-02", "--limit", "0", "--json").stdout
    )
    assert sorted(c["tracking_id"] for c in mine) == sorted(ids)


def test_limit_counts_overdue_and_refuses_negative(nodes: NodeFactory) -> None:
    """--overdue with a limit still counts every overdue complaint; --limit -1 is a usage
    error."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    complaints.submit_many(node.ctx(), [_draft(n) for n in range(3)])
    node.close()
    later = "2027-03-01T09:00:00+07:00"  # past every verify deadline
    result = CliRunner().invoke(
        cli,
        ["complaint", "list", "--overdue", "--limit", "2", "--config", str(node.config)],
        env={"LAPOR_NODE_FAKE_NOW": later},
    )
    assert result.exit_code == 0, result.output
    assert "showing 2 of 3 complaints" in result.output
    refused = CliRunner().invoke(
        cli, ["complaint", "list", "--limit", "-1", "--config", str(node.config)]
    )
    assert refused.exit_code == 2 and "-1 is not in the range x>=0" in refused.output
