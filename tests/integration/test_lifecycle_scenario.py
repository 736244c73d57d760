"""Issue 5's scenario through the CLI, with real `lapor-node serve` processes: national,
province and two regencies. One complaint goes all the way down, is followed up, resolved
and closes; one is returned by the first regency and disposed to the second; one misses its
follow-up deadline (the clock moved forward, LAPOR_NODE_FAKE_NOW) and is escalated. At the
end each node's view of each complaint is what it should be, and each pair of ledgers
reconciles: every envelope recorded once on each side, each node's own actions its own."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess

import pytest

from node._proto.lapor.v1 import ledger_pb2
from node.clock import FAKE_NOW_ENV
from node.ledger.reconcile import reconcile_exports
from node.services import audit, checkpoints
from node.store import queries
from tests.conftest import NodeFactory
from tests.support.cli import run_cli
from tests.support.nodes import TestNode, link, status_of, stop_together, wait_until

pytestmark = pytest.mark.slow

SUBMIT = [
    "complaint",
    "submit",
    "--description",
    "Lubang besar di jalan poros",
    "--category",
    "infrastruktur",
    "--region",
    "64.02",
    "--reporter-name",
    "Siti Aminah",
    "--json",
]


def cli_at(node: TestNode, when: dt.datetime, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a CLI command on `node` with its clock at `when` (the test-only fake clock), in
    this process (tests/support/cli.py: the fake clock is read from the environment at
    each look, and the command's environment is set only while it runs)."""
    result = run_cli([*args, "--config", str(node.config)], env={FAKE_NOW_ENV: when.isoformat()})
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def wait_for(node: TestNode, tracking_id: str, expected: tuple[str, str]) -> None:
    wait_until(
        lambda: status_of(node, tracking_id) == expected,
        what=f"{tracking_id} to be {expected} at {node.node_id}",
    )


def status_changes(node: TestNode) -> list[tuple[str, str]]:
    with node.ctx().db.read() as session:
        entries = [ledger_pb2.LedgerEntry.FromString(r.entry) for r in queries.iter_ledger(session)]
    return [
        (e.status_changed.tracking_id, e.status_changed.action)
        for e in entries
        if e.WhichOneof("kind") == "status_changed"
    ]


SECRET_NAME, SECRET_CONTACT = "Rahmat Hidayat", "+62 813 4444 0202"


def _database_bytes(node: TestNode) -> bytes:
    """Every value in the node's database, as one byte string to search."""
    from sqlalchemy import select

    from node.store.models import Base

    parts: list[bytes] = []
    with node.ctx().db.read() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                parts.extend(v if isinstance(v, bytes) else str(v).encode() for v in row)
    return b"\x00".join(parts)


def export(node: TestNode) -> list[str]:
    out = io.StringIO()
    audit.export(node.ctx(), out)
    return out.getvalue().splitlines(keepends=True)


def test_three_complaints_through_the_tree(nodes: NodeFactory) -> None:
    """Down, back up, across and escalated: every node ends with the right view and ledger."""
    national = nodes("id", "Nasional")
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    kukar = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    kutim = nodes("id-64-08", "Kabupaten Kutai Timur")
    link(national, province)
    link(province, kukar)
    link(province, kutim)
    for n in (national, province, kukar, kutim):
        n.start()

    def down_to_kukar(title: str) -> str:
        tid = str(json.loads(national.cli(*SUBMIT, "--title", title).stdout)["tracking_id"])
        national.cli("complaint", "refer", tid, "--to", "id-64")
        wait_for(national, tid, ("accepted", "id-64"))
        province.cli("complaint", "refer", tid, "--to", "id-64-02")
        wait_for(national, tid, ("accepted", "id-64-02"))
        return tid

    # 1. All the way down, followed up, resolved, and closed by the regency's scheduler.
    a = down_to_kukar("Jalan poros rusak")
    kukar.cli("complaint", "update", a, "--note", "Tim meninjau lokasi")
    wait_for(national, a, ("in_progress", "id-64-02"))
    kukar.cli("complaint", "resolve", a, "--note", "Jalan sudah diaspal ulang")
    wait_for(national, a, ("resolved", "id-64-02"))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=20)
    ticked = json.loads(cli_at(kukar, later, "complaint", "tick", "--json").stdout)
    assert ticked["closed"] == [a]
    wait_for(national, a, ("closed", "id-64-02"))

    # 2. Returned by the first regency (bukan wewenang) and disposed to the second.
    b = down_to_kukar("Jembatan rusak")
    kukar.cli("complaint", "return", b, "--reason", "Jembatan provinsi")
    wait_for(national, b, ("returned", "id-64"))
    province.cli("complaint", "refer", b, "--to", "id-64-08")
    wait_for(national, b, ("accepted", "id-64-08"))

    # 3. The first follow-up deadline passes; the national node sees it overdue, and the
    #    regency escalates it to the province, which can dispose it again.
    c = down_to_kukar("Lampu jalan mati")
    overdue = json.loads(cli_at(national, later, "complaint", "list", "--overdue", "--json").stdout)
    # b waits at the second regency too; a is closed, so it has no clock.
    assert {v["tracking_id"]: v["overdue"][0].split()[0] for v in overdue} == {
        b: "first_follow_up",
        c: "first_follow_up",
    }
    cli_at(kukar, later, "complaint", "escalate", c, "--reason", "Belum ada tindak lanjut")
    wait_for(national, c, ("escalated", "id-64"))

    wait_for(province, c, ("escalated", "id-64"))

    # 4. A confidential complaint, resolved by the first regency: the reporter's identity
    #    reaches it sealed, and the province it passed through never holds it in clear.
    d = str(
        json.loads(
            national.cli(
                *SUBMIT,
                "--title",
                "Pungutan liar",
                "--reporter-name",
                SECRET_NAME,
                "--reporter-contact",
                SECRET_CONTACT,
                "--confidential",
            ).stdout
        )["tracking_id"]
    )
    national.cli("complaint", "refer", d, "--to", "id-64")
    wait_for(national, d, ("accepted", "id-64"))
    province.cli("complaint", "refer", d, "--to", "id-64-02")
    wait_for(national, d, ("accepted", "id-64-02"))
    kukar.cli("complaint", "update", d, "--note", "Inspektorat memeriksa petugas")
    wait_until(
        lambda: (
            kukar.cli("complaint", "show", d, "--identity", "--json", check=False).returncode == 0
        ),
        what="the sealed identity at the handling regency",
    )
    shown_d = json.loads(kukar.cli("complaint", "show", d, "--identity", "--json").stdout)
    assert shown_d["identity"]["name"] == SECRET_NAME
    kukar.cli("complaint", "resolve", d, "--note", "Petugas dijatuhi sanksi")
    wait_for(national, d, ("resolved", "id-64-02"))
    refused = province.cli("complaint", "show", d, "--identity", check=False)
    assert refused.returncode == 1 and "holds no reporter identity" in refused.stderr
    for secret in (SECRET_NAME, SECRET_CONTACT):
        assert secret.encode() not in _database_bytes(province)
        assert secret not in province.log_path.read_text()

    expected: list[tuple[TestNode, dict[str, tuple[str, str] | None]]] = [
        (
            national,
            {
                a: ("closed", "id-64-02"),
                b: ("accepted", "id-64-08"),
                c: ("escalated", "id-64"),
            },
        ),
        (
            province,
            {
                a: ("closed", "id-64-02"),
                b: ("accepted", "id-64-08"),
                c: ("escalated", "id-64"),
            },
        ),
        (kukar, {a: ("closed", "id-64-02"), b: ("returned", "id-64"), c: ("escalated", "id-64")}),
        (kutim, {a: None, b: ("accepted", "id-64-08"), c: None}),
    ]
    for node, views in expected:
        for tid, view in views.items():
            assert status_of(node, tid) == view, f"{node.node_id} {tid}"
    shown = json.loads(national.cli("complaint", "show", a, "--json").stdout)
    assert (shown["status"], shown["holder"], shown["referred_to"]) == (
        "closed",
        "id-64-02",
        "id-64",
    )

    # Each node's own actions are its own StatusChanged entries, and nobody else's.
    assert status_changes(national) == []
    assert status_changes(province) == [(b, "redispose")]
    assert status_changes(kukar) == [
        (a, "follow_up"),
        (a, "resolve"),
        (a, "close"),
        (b, "return"),
        (c, "escalate"),
        (d, "follow_up"),
        (d, "resolve"),
    ]
    assert status_changes(kutim) == []

    stop_together(national, province, kukar, kutim)
    vkey = checkpoints.verifier_key(national.ctx())
    for parent, child in ((national, province), (province, kukar), (province, kutim)):
        p_lines, c_lines = export(parent), export(child)
        result = reconcile_exports(
            lambda p=p_lines: p,
            lambda c=c_lines: c,
            trusted_vkey=vkey if parent is national else None,
        )
        assert result.discrepancies == () and result.pending == (), (
            parent.node_id,
            child.node_id,
            result,
        )
