"""A signed referral crosses real nodes (separate processes, mutual TLS on loopback)."""

from __future__ import annotations

import json

import pytest

from node.federation.outbox_watch import OUTBOX_LISTEN_RETRY_SECONDS
from node.services import exchange
from tests.conftest import NodeFactory
from tests.support.nodes import TestNode, link, snapshot, status_of, wait_until
from tests.support.waits import bound

pytestmark = pytest.mark.slow

SUBMIT = [
    "complaint",
    "submit",
    "--title",
    "Jalan poros rusak",
    "--description",
    "Lubang besar di jalan poros Tenggarong",
    "--category",
    "infrastruktur",
    "--region",
    "64.02",
    "--reporter-name",
    "Siti Aminah",
    "--reporter-contact",
    "081355501234",
    "--reporter-id-number",
    "6402011203850001",
    "--json",
]


def test_referral_crosses_two_levels_and_each_side_shows_it(nodes: NodeFactory) -> None:
    """national -> province -> regency: each hop is received, receipted, and shown accepted."""
    national = nodes("id", "Nasional")
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(national, province)
    link(province, regency)
    for n in (national, province, regency):
        n.start()

    tracking = json.loads(national.cli(*SUBMIT).stdout)["tracking_id"]
    national.cli("complaint", "refer", tracking, "--to", "id-64")
    wait_until(
        lambda: status_of(national, tracking) == ("accepted", "id-64"),
        what="the province's receipt at the national node",
    )
    assert status_of(province, tracking) == ("accepted", "id-64")

    province.cli("complaint", "refer", tracking, "--to", "id-64-02")
    wait_until(
        lambda: status_of(province, tracking) == ("accepted", "id-64-02"),
        what="the regency's receipt at the province",
    )
    assert status_of(regency, tracking) == ("accepted", "id-64-02")

    shown = json.loads(regency.cli("complaint", "show", tracking, "--content", "--json").stdout)
    assert shown["title"] == "Jalan poros rusak"
    assert shown["received_from"] == "id-64"
    history = json.loads(province.cli("complaint", "show", tracking, "--json").stdout)["history"]
    assert [e["status"] for e in history] == ["accepted", "referred", "accepted"]
    listed = json.loads(province.cli("complaint", "list", "--json").stdout)
    assert [c["tracking_id"] for c in listed] == [tracking]
    # Each hop left both ledgers one entry richer per step: link, referral, receipt.
    assert snapshot(regency)["ledger_entries"] == 2  # link + referral received
    # 2 links, referral received, referral sent, receipt, and the two status updates it
    # sent up to the national node: its own acceptance, then the regency's.
    assert snapshot(province)["ledger_entries"] == 7


def test_referral_waits_in_outbox_until_the_child_starts(nodes: NodeFactory) -> None:
    """A referral made while the child is down is delivered once the child comes up."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-08", "Kabupaten Kutai Timur")
    link(province, regency)
    province.start()
    tracking = json.loads(province.cli(*SUBMIT).stdout)["tracking_id"]
    province.cli("complaint", "refer", tracking, "--to", "id-64-08")
    listed = json.loads(province.cli("link", "list", "--json").stdout)
    assert [(v["peer_id"], v["outbox_depth"]) for v in listed] == [("id-64-08", 1)]
    assert status_of(province, tracking) == ("referred", "id-64")

    regency.start()
    wait_until(
        lambda: status_of(province, tracking) == ("accepted", "id-64-08"),
        what="delivery after the child started",
    )
    wait_until(
        lambda: json.loads(province.cli("link", "list", "--json").stdout)[0]["outbox_depth"] == 0,
        what="the outbox to drain",
    )


def test_restarted_nodes_resume_without_redelivering(nodes: NodeFactory) -> None:
    """Stopping and restarting both nodes delivers new referrals once and keeps sequences dense."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(province, regency)
    province.start()
    regency.start()
    first = json.loads(province.cli(*SUBMIT).stdout)["tracking_id"]
    province.cli("complaint", "refer", first, "--to", "id-64-02")
    wait_until(lambda: status_of(province, first) == ("accepted", "id-64-02"), what="first")
    regency.stop()
    province.stop()
    second = json.loads(province.cli(*SUBMIT).stdout)["tracking_id"]
    province.cli("complaint", "refer", second, "--to", "id-64-02")
    regency.start()
    province.start()
    wait_until(lambda: status_of(province, second) == ("accepted", "id-64-02"), what="second")
    assert snapshot(regency)["links"] == [("id-64", 3, 2)]  # 2 receipts sent, 2 referrals in
    assert exchange.hello_state(province.ctx(), "id-64-02").last_received == 2  # type: ignore[arg-type]


def test_a_referral_queued_by_the_cli_wakes_the_running_node(nodes: NodeFactory) -> None:
    """An operator's `refer` runs in a process of its own: the running province learns of
    the row from its outbox watcher (SQLite's data_version, PostgreSQL's notification), not
    from its idle poll, here set to ten minutes so that only the watcher can deliver it.
    On PostgreSQL the connection it listens on is then killed by the server: it listens
    again, and the third referral still crosses."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(province, regency)
    for node in (province, regency):
        text = node.config.read_text()
        assert "poll_interval_ms: 10000" in text
        node.config.write_text(text.replace("poll_interval_ms: 10000", "poll_interval_ms: 600000"))
        node.start()
    wait_until(lambda: _connected(province, "id-64-02"), what="the regency's stream")
    for n in range(3):  # the second while the link has been idle
        if n == 2 and not province.ctx().db.is_sqlite:
            assert _kill_listener(province) == 1
        tracking = json.loads(province.cli(*SUBMIT).stdout)["tracking_id"]
        province.cli("complaint", "refer", tracking, "--to", "id-64-02")
        wait_until(
            lambda t=tracking: status_of(province, t) == ("accepted", "id-64-02"),
            # Never the idle poll (600 s): at once, or after the listener is back.
            timeout=bound(OUTBOX_LISTEN_RETRY_SECONDS),
            what="the regency's receipt",
        )


def _kill_listener(node: TestNode) -> int:
    """Terminate the server process of `node`'s LISTEN connection; how many were found."""
    from sqlalchemy import create_engine, text

    engine = create_engine(node.database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND query LIKE 'LISTEN %'"
                    )
                ).all()
            )
    finally:
        engine.dispose()


def _connected(node: TestNode, peer: str) -> bool:
    listing = json.loads(node.cli("link", "list", "--json").stdout)
    return any(row["peer_id"] == peer and row["connected"] for row in listing)
