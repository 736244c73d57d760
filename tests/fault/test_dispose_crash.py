"""A node that dies between an action and the auto-disposition it triggers (fault point
`before_dispose`, node/faults.py) leaves both or neither: the verification, or the accepted
referral, commits together with the referral on to the child the rules name, so no
complaint is left verified (or accepted) and undisposed with nothing to sweep it."""

from __future__ import annotations

import json

import pytest

from node.faults import EXIT_STATUS, FAULT_ENV
from node.services import complaints
from node.store.models import Link
from tests.conftest import NodeFactory
from tests.support.nodes import TestNode, link, snapshot, status_of, stop_together
from tests.support.waits import recovery_bound, wait_until

AUTO = """
routing:
  auto: true
  rules:
    - {region: "64.02", to: id-64-02}
"""

SUBMIT = (
    "complaint",
    "submit",
    "--title",
    "Jembatan Kutai Kartanegara retak",
    "--description",
    "Retakan di pilar jembatan, warga khawatir.",
    "--category",
    "infrastruktur",
    "--region",
    "64.02.05",
    "--json",
)


def province_with_rules(nodes: NodeFactory) -> tuple[TestNode, TestNode]:
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    province.config.write_text(province.config.read_text() + AUTO)
    link(province, regency)
    return province, regency


def sent_to(node: TestNode, peer: str) -> int:
    """How many envelopes `node` has queued for `peer` (its link's next sequence - 1)."""
    with node.ctx().db.read() as session:
        link_row = session.get(Link, peer)
        assert link_row is not None
        return link_row.next_out_seq - 1


def test_a_crash_between_verify_and_dispose_leaves_neither(
    nodes: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`complaint verify` killed before its auto-disposition commits nothing; run again, the
    complaint is verified and referred in one go."""
    province, _ = province_with_rules(nodes)
    tracking = json.loads(province.cli(*SUBMIT).stdout)["tracking_id"]
    before = snapshot(province)
    monkeypatch.setenv(FAULT_ENV, "before_dispose")
    crashed = province.cli("complaint", "verify", tracking, check=False, in_process=False)
    assert crashed.returncode == EXIT_STATUS, crashed.stderr
    assert snapshot(province) == before  # neither the verification nor the referral
    assert status_of(province, tracking) == ("submitted", "id-64")
    monkeypatch.delenv(FAULT_ENV)
    province.cli("complaint", "verify", tracking)
    view = complaints.show(province.ctx(), tracking)
    assert (view.status, view.referred_to) == ("referred", "id-64-02")  # both
    assert [e.status for e in view.history] == ["submitted", "verified", "referred"]
    assert sent_to(province, "id-64-02") == 1


def test_a_crash_between_accepting_and_disposing_leaves_neither(
    nodes: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A province that dies before disposing of a referral it is accepting has stored none
    of it; restarted, it accepts and disposes in one transaction and the national node
    learns the regency holds it."""
    national = nodes("id", "Nasional")
    province, regency = province_with_rules(nodes)
    link(national, province)
    national.start()
    regency.start()
    try:
        tracking = json.loads(national.cli(*SUBMIT).stdout)["tracking_id"]
        national.cli("complaint", "refer", tracking, "--to", "id-64")
        monkeypatch.setenv(FAULT_ENV, "before_dispose")
        province.start(until_serving=False)
        assert province.process is not None
        province.process.wait(timeout=recovery_bound())
        assert province.process.returncode == EXIT_STATUS
        monkeypatch.delenv(FAULT_ENV)
        assert status_of(province, tracking) is None  # neither accepted nor disposed
        assert sent_to(province, "id-64-02") == 0
        province.start()
        wait_until(
            lambda: status_of(national, tracking) == ("accepted", "id-64-02"),
            timeout=2 * recovery_bound(),  # two links come up and carry it, each way
            what="the regency's acceptance, known at the national node",
        )
        assert status_of(province, tracking) == ("accepted", "id-64-02")
        assert sent_to(province, "id-64-02") >= 1
    finally:
        stop_together(national, province, regency)
