"""Routing rules on a real province node, in process on both databases: the national node
above, three linked regencies below (Kutai Kartanegara, Kutai Timur, Samarinda), rules to
them and to two units that are not linked (Mahakam Ulu, the health office). Dry run,
dispose, override, revoked and returning children, auto_dispose; and the CLI once."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from node.complaints import ComplaintDraft
from node.errors import NotFoundError, PermissionDeniedError, StateError, ValidationError
from node.services import complaints, lifecycle, links, referral, routing
from node.services.context import NodeContext
from tests.support.nodes import TestNode, carry, link, snapshot

NodeFactory = Callable[[str, str], TestNode]

ROUTING = """
routing:
  auto: false
  rules:
    - {region: "64.02", to: id-64-02}
    - {region: "64.08", to: id-64-08}
    - {region: "64.72", to: id-64-72}
    - {region: "64.11", to: id-64-11}  # Mahakam Ulu: not linked
    - {name: Dinkes Provinsi, region: "64", categories: [kesehatan], to: id-64-dinkes}
    - {region: "64.72", categories: [kesehatan], to: id-64-72}
"""


def draft(region: str, category: str = "jalan rusak") -> ComplaintDraft:
    return ComplaintDraft(
        title="Laporan warga",
        description="Sudah tiga bulan belum ditangani.",
        classification="pengaduan",
        category=category,
        region_code=region,
        channel="walk_in",
    )


@dataclasses.dataclass
class Province:
    national: TestNode
    node: TestNode  # id-64, with ROUTING in its node.yaml
    kukar: TestNode  # id-64-02
    kutim: TestNode  # id-64-08
    samarinda: TestNode  # id-64-72

    @property
    def ctx(self) -> NodeContext:
        return self.node.ctx()

    def submit(self, region: str, category: str = "jalan rusak") -> str:
        return complaints.submit(self.ctx, draft(region, category))

    def auto(self, on: bool) -> None:
        """Turn routing.auto on or off in the open context (as an edited node.yaml would)."""
        config = self.ctx.config
        self.ctx.config = dataclasses.replace(
            config, routing=dataclasses.replace(config.routing, auto=on)
        )


@pytest.fixture
def kaltim(nodes: NodeFactory) -> Iterator[Province]:
    national = nodes("id", "Nasional")
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    with province.config.open("a") as f:
        f.write(ROUTING)
    p = Province(
        national,
        province,
        nodes("id-64-02", "Kabupaten Kutai Kartanegara"),
        nodes("id-64-08", "Kabupaten Kutai Timur"),
        nodes("id-64-72", "Kota Samarinda"),
    )
    link(national, province)
    for child in (p.kukar, p.kutim, p.samarinda):
        link(province, child)
    yield p


def settle(p: Province) -> None:
    """Carry envelopes along every link, both ways, until nothing moves."""
    pairs = [(p.national, p.node)]
    for child in (p.kukar, p.kutim, p.samarinda):
        pairs += [(p.node, child), (child, p.node)]
    pairs.append((p.node, p.national))
    while sum(carry(a, b) for a, b in pairs):
        pass


def status(node: TestNode, tracking_id: str) -> tuple[str, str, str | None]:
    v = complaints.show(node.ctx(), tracking_id)
    return v.status, v.holder, v.referred_to


def test_dry_run_says_where_and_why_and_changes_nothing(kaltim: Province) -> None:
    """route() names the child and rule for each complaint, or why it stays, read only."""
    p = kaltim
    road = p.submit("64.02.05")
    health_kukar = p.submit("64.02.05", "kesehatan")
    health_smd = p.submit("64.72.01", "kesehatan")
    mahulu = p.submit("64.11.01")
    elsewhere = p.submit("65.01")
    before = snapshot(p.node)

    d = routing.route(p.ctx, road)
    assert d.target == "id-64-02" and d.rule is not None and d.rule.position == 0
    assert [c.matched for c in d.considered] == [True, False, False, False, False, False]
    d = routing.route(p.ctx, health_smd)
    assert d.target == "id-64-72" and d.rule is not None and d.rule.position == 5
    assert "the most specific of 3 matching rules" in d.reason
    d = routing.route(p.ctx, health_kukar)
    assert d.target is None and d.rule is not None and d.rule.to == "id-64-dinkes"
    assert "id-64-dinkes is not a linked child of this node" in d.reason
    d = routing.route(p.ctx, mahulu)
    assert d.target is None and "id-64-11 is not a linked child" in d.reason
    d = routing.route(p.ctx, elsewhere)
    assert d.target is None and d.rule is None
    assert "no routing rule matches region 65.01" in d.reason

    assert snapshot(p.node) == before


def test_dispose_refers_by_the_rules_and_the_child_accepts(kaltim: Province) -> None:
    """dispose() refers to the rule's child; the referral crosses and comes back accepted;
    a second dispose is refused, and the dry run says why."""
    p = kaltim
    tid = p.submit("64.72.01")
    message_id = routing.dispose(p.ctx, tid)
    assert status(p.node, tid) == ("referred", "id-64", "id-64-72")
    settle(p)
    assert status(p.samarinda, tid)[:2] == ("accepted", "id-64-72")
    assert status(p.node, tid) == ("accepted", "id-64-72", "id-64-72")
    assert complaints.show(p.node.ctx(), tid).referred_to == "id-64-72"
    assert message_id

    again = routing.route(p.ctx, tid)
    assert again.target is None
    assert again.reason == (
        "it cannot be disposed now: it is accepted and held by id-64-72; only the holder may "
        "dispose it. As for the rules: they send it to id-64-72"
    )
    before = snapshot(p.node)
    with pytest.raises(StateError, match="was not disposed"):
        routing.dispose(p.ctx, tid)
    assert snapshot(p.node) == before


@pytest.mark.parametrize(
    ("region", "category", "why"),
    [
        pytest.param("65.01", "jalan rusak", "no routing rule matches", id="no-rule"),
        pytest.param("64.11.01", "jalan rusak", "id-64-11 is not a linked", id="unlinked"),
        pytest.param("64.08", "kesehatan", "id-64-dinkes is not a linked", id="unlinked-unit"),
    ],
)
def test_dispose_without_a_target_is_refused_and_changes_nothing(
    kaltim: Province, region: str, category: str, why: str
) -> None:
    """No rule, or a rule to a child that is not linked: StateError, nothing written."""
    p = kaltim
    tid = p.submit(region, category)
    before = snapshot(p.node)
    with pytest.raises(StateError, match=why):
        routing.dispose(p.ctx, tid)
    assert snapshot(p.node) == before
    assert status(p.node, tid) == ("submitted", "id-64", None)


def test_override_sends_to_the_chosen_linked_child_only(kaltim: Province) -> None:
    """--to wins over the rules, but only to a linked child; a refused override changes
    nothing."""
    p = kaltim
    tid = p.submit("64.02.05")  # the rules say id-64-02
    before = snapshot(p.node)
    with pytest.raises(PermissionDeniedError, match="id-64-11 is not a linked child"):
        routing.dispose(p.ctx, tid, override="id-64-11")
    with pytest.raises(ValidationError, match="invalid node id"):
        routing.dispose(p.ctx, tid, override="Kab Kutai Timur")
    with pytest.raises(PermissionDeniedError, match="id is not a linked child"):
        routing.dispose(p.ctx, tid, override="id")  # the parent
    assert snapshot(p.node) == before

    routing.dispose(p.ctx, tid, override="id-64-08")
    settle(p)
    assert status(p.node, tid) == ("accepted", "id-64-08", "id-64-08")
    assert status(p.kutim, tid)[:2] == ("accepted", "id-64-08")
    with pytest.raises(NotFoundError, match="no complaint"):  # Kukar never saw it
        complaints.show(p.kukar.ctx(), tid)


def test_a_revoked_child_gets_nothing(kaltim: Province) -> None:
    """After the link with Kutai Timur is revoked its rule disposes nowhere, and says so."""
    p = kaltim
    tid = p.submit("64.08.03")
    assert routing.route(p.ctx, tid).target == "id-64-08"
    links.revoke(p.ctx, "id-64-08", "kesepakatan berakhir")
    d = routing.route(p.ctx, tid)
    assert d.target is None and "id-64-08 is not a linked child" in d.reason
    with pytest.raises(StateError, match="id-64-08 is not a linked child"):
        routing.dispose(p.ctx, tid)


def test_a_returned_complaint_is_not_sent_back_to_the_child_that_returned_it(
    kaltim: Province,
) -> None:
    """Bukan wewenang: the rules still point at Kukar, so the dry run refuses to send it
    back there; an override redisposes it to another regency."""
    p = kaltim
    tid = p.submit("64.02.05")
    routing.dispose(p.ctx, tid)
    settle(p)
    lifecycle.return_(p.kukar.ctx(), tid, "Jalan provinsi, bukan kewenangan kabupaten")
    settle(p)
    assert status(p.node, tid) == ("returned", "id-64", "id-64-02")

    d = routing.route(p.ctx, tid)
    assert d.target is None and "id-64-02 returned it (bukan wewenang)" in d.reason
    with pytest.raises(StateError, match="returned it"):
        routing.dispose(p.ctx, tid)
    routing.dispose(p.ctx, tid, override="id-64-72")
    settle(p)
    assert status(p.node, tid) == ("accepted", "id-64-72", "id-64-72")


def test_auto_dispose_follows_routing_auto_and_never_raises(kaltim: Province) -> None:
    """Off: nothing moves. On: a verified complaint goes where the rules say; one without a
    target stays, with the reason logged; an unknown id is no error."""
    p = kaltim
    tid = p.submit("64.72.01", "kesehatan")
    lifecycle.verify(p.ctx, tid)
    before = snapshot(p.node)
    d = routing.auto_dispose(p.ctx, tid)
    assert d.target is None and d.reason.startswith("routing.auto is off in node.yaml")
    assert snapshot(p.node) == before

    p.auto(True)
    d = routing.auto_dispose(p.ctx, tid)
    assert d.target == "id-64-72"
    assert status(p.node, tid) == ("referred", "id-64", "id-64-72")

    stays = p.submit("65.01")
    lifecycle.verify(p.ctx, stays)
    before = snapshot(p.node)
    with capture_logs() as logs:
        d = routing.auto_dispose(p.ctx, stays)
        missing = routing.auto_dispose(p.ctx, "id-64.2026.999999")
        refused = routing.auto_dispose(p.ctx, tid)  # already referred: cannot go again
    assert d.target is None and "no routing rule matches" in d.reason
    assert missing.target is None and "no complaint id-64.2026.999999" in missing.reason
    assert refused.target is None and "cannot be disposed now" in refused.reason
    assert snapshot(p.node) == before
    events = [(e["event"], e.get("complaint_id")) for e in logs]
    assert ("routing.stays", stays) in events
    assert ("routing.auto_failed", "id-64.2026.999999") in events


def test_a_disposition_that_fails_rolls_back_alone_and_the_verification_commits(
    kaltim: Province, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With routing.auto on, `verify` disposes in its own transaction, in a savepoint: a
    disposition that fails after writing its referral leaves no trace of it (no entry, no
    envelope, no sequence), is logged, and the verification is committed."""
    p = kaltim
    p.auto(True)
    tid = p.submit("64.02.05")
    real = referral.refer_many_in

    def fails_after_writing(*args: Any) -> list[str]:
        real(*args)
        raise StateError("injected: the disposition fails after its referral was written")

    monkeypatch.setattr(referral, "refer_many_in", fails_after_writing)
    before = snapshot(p.node)
    with capture_logs() as logs:
        index = lifecycle.verify(p.ctx, tid)
    view = complaints.show(p.ctx, tid)
    assert (view.status, view.referred_to) == ("verified", None)
    assert [(e.status, e.ledger_index) for e in view.history][-1] == ("verified", index)
    after = snapshot(p.node)
    assert after["links"] == before["links"]  # no sequence taken on any link
    assert len(after["ledger"]) == len(before["ledger"]) + 1  # the verification only
    events = [(e["event"], e.get("complaint_id")) for e in logs]
    assert ("routing.auto_failed", tid) in events


def test_auto_dispose_after_accepting_from_the_parent(kaltim: Province) -> None:
    """A complaint the national node refers to the province goes on down by the rules in
    the transaction that accepts it (exchange.receive_batch), and the national node sees
    it held by the regency."""
    p = kaltim
    p.auto(True)
    tid = complaints.submit(p.national.ctx(), draft("64.02.05"))
    complaints.refer(p.national.ctx(), tid, "id-64")
    assert carry(p.national, p.node) == 1
    view = complaints.show(p.ctx, tid)
    assert (view.status, view.referred_to) == ("referred", "id-64-02")
    assert [e.status for e in view.history] == ["accepted", "referred"]
    d = routing.auto_dispose(p.ctx, tid)  # once more: nothing left to do
    assert d.target is None and "it is referred" in d.reason
    settle(p)
    assert status(p.kukar, tid)[:2] == ("accepted", "id-64-02")
    assert status(p.national, tid)[:2] == ("accepted", "id-64-02")


@pytest.mark.parametrize("db_kind", ["sqlite"])  # one subprocess run is enough
def test_cli_route_and_dispose(nodes: NodeFactory) -> None:
    """`complaint route --json` is the dry run; `complaint dispose` applies it, `--to`
    overrides, and a complaint without a target is refused with the reason."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    with province.config.open("a") as f:
        f.write(ROUTING)
    kukar = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(province, kukar)
    kutim = nodes("id-64-08", "Kabupaten Kutai Timur")
    link(province, kutim)
    submit = ["complaint", "submit", "--title", "Jalan rusak", "--description", "Berlubang"]
    submit += ["--category", "jalan rusak", "--json", "--region"]
    first = json.loads(province.cli(*submit, "64.02.05").stdout)["tracking_id"]
    second = json.loads(province.cli(*submit, "65.01").stdout)["tracking_id"]

    dry = json.loads(province.cli("complaint", "route", first, "--json").stdout)
    assert dry["target"] == "id-64-02" and dry["rule"]["position"] == 0
    assert dry["auto"] is False and len(dry["considered"]) == 6
    assert dry["facts"] == {
        "region_code": "64.02.05",
        "category": "jalan rusak",
        "classification": "pengaduan",
    }
    text = province.cli("complaint", "route", first).stdout
    assert f"{first} would go to id-64-02" in text and "rules considered" in text

    done = province.cli("complaint", "dispose", first).stdout
    assert f"{first} referred to id-64-02" in done
    refused = province.cli("complaint", "dispose", second, check=False)
    assert refused.returncode == 1 and "no routing rule matches region 65.01" in refused.stderr
    override = json.loads(
        province.cli("complaint", "dispose", second, "--to", "id-64-08", "--json").stdout
    )
    assert override["to"] == "id-64-08" and override["reason"] == "manual override (--to)"
    assert status(province, second) == ("referred", "id-64", "id-64-08")
