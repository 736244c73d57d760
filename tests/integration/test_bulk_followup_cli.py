"""`complaint update|resolve` on several complaints (arguments and --ids-from), all or none
in one transaction (issue 21.6), in process, on both databases: a bad id in the middle
leaves every complaint, the ledger and the outbox as they were."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from node.cli.main import cli
from node.complaints import ComplaintDraft
from node.services import complaints, lifecycle
from node.store import queries
from tests.conftest import NodeFactory
from tests.support.nodes import TestNode, carry, link, status_of

NOW = "2026-05-04T09:00:00+07:00"


def _draft(n: int) -> ComplaintDraft:
    return ComplaintDraft(
        title=f"Jalan berlubang #{n}",
        description="Lubang di depan sekolah belum ditutup.",
        classification="pengaduan",
        category="infrastruktur",
        region_code="64.02",
        channel="walk_in",
    )


def run(node: TestNode, *args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(
        cli, [*args, "--config", str(node.config)], env={"LAPOR_NODE_FAKE_NOW": NOW}
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert (result.exit_code == 0) is ok, result.output
    return result


def verified(node: TestNode, count: int) -> list[str]:
    """`count` complaints submitted and verified at `node`, which handles them itself."""
    ctx = node.ctx()
    ids = complaints.submit_many(ctx, [_draft(n) for n in range(count)])
    for tracking_id in ids:
        lifecycle.verify(ctx, tracking_id)
    node.close()  # the CLI opens the database itself
    return list(ids)


def state(node: TestNode) -> tuple[int, dict[str, str]]:
    """The ledger size and every complaint's status."""
    with node.ctx().db.read() as session:
        size = queries.ledger_size(session)
        statuses = {c.tracking_id: c.status for c in queries.list_complaints(session, limit=10**6)}
    node.close()
    return size, statuses


def test_update_and_resolve_several(nodes: NodeFactory, tmp_path: Path) -> None:
    """Ids as arguments and from a file: each followed up, then each resolved; one id
    gives the same output as before."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    ids = verified(node, 5)
    listed = tmp_path / "ids.txt"
    listed.write_text(f"{ids[2]}\n\n{ids[3]}\n")
    out = run(
        node, "complaint", "update", ids[0], ids[1], "--ids-from", str(listed),
        "--note", "Tim dikirim", "--json",
    ).output  # fmt: skip
    document = json.loads(out)
    assert document["action"] == "followed up" and document["count"] == 4
    assert [d["tracking_id"] for d in document["done"]] == ids[:4]
    assert len({d["ledger_index"] for d in document["done"]}) == 4
    one = json.loads(run(node, "complaint", "update", ids[4], "--note", "Tim", "--json").output)
    assert one["tracking_id"] == ids[4] and one["action"] == "followed up"
    assert set(state(node)[1].values()) == {"in_progress"}

    text = run(node, "complaint", "resolve", *ids, "--note", "Sudah ditambal").output
    assert "5 complaints resolved" in text
    assert set(state(node)[1].values()) == {"resolved"}


def test_a_bad_id_in_the_middle_changes_nothing(nodes: NodeFactory, tmp_path: Path) -> None:
    """Unknown, not in progress, or given twice: refused with the complaint named, and no
    complaint, ledger entry or status changed."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    ids = verified(node, 4)
    run(node, "complaint", "update", ids[0], ids[1], ids[3], "--note", "Tim dikirim")
    before = state(node)
    unknown = "id-64.2026.999999"
    cases = [
        ([ids[0], unknown, ids[1]], f"complaint 2 of 3: no complaint {unknown} on this node"),
        ([ids[0], ids[1], ids[2], ids[3]], "complaint 3 of 4"),  # ids[2] is not in progress
        ([ids[0], ids[1], ids[0]], f"{ids[0]} is given twice"),
        ([ids[0], "bukan-id", ids[1]], "invalid tracking id 'bukan-id'"),
    ]
    for given, message in cases:
        listed = tmp_path / "ids.txt"
        listed.write_text("\n".join(given[1:]) + "\n")
        result = run(
            node, "complaint", "resolve", given[0], "--ids-from", str(listed),
            "--note", "Selesai", ok=False,
        )  # fmt: skip
        assert result.exit_code == 1
        assert message in " ".join(result.output.split())
        assert state(node) == before


def test_updates_of_a_batch_travel_up(nodes: NodeFactory) -> None:
    """A regency follows up complaints its province referred, in one command: each
    status update reaches the province."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(province, regency)
    ids = list(complaints.submit_many(province.ctx(), [_draft(n) for n in range(3)]))
    complaints.refer_many(province.ctx(), ids, "id-64-02")
    while carry(province, regency) + carry(regency, province):
        pass
    regency.close()
    run(regency, "complaint", "update", *ids, "--note", "Ditangani dinas PU")
    while carry(regency, province) + carry(province, regency):
        pass
    for tracking_id in ids:
        assert status_of(province, tracking_id) == ("in_progress", "id-64-02")
