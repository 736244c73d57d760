"""The pinned set (node.services.links.pins): a refresh given the pins it loaded before
reads the certificates only of peers whose fingerprints are new or changed (decision 0043),
and gives exactly what a full read gives, on both databases."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection
from typing import Any

import pytest

from node.clock import FixedClock
from node.services import links, rotation
from node.services.context import NodeContext
from node.store import keys, queries
from tests.conftest import NodeFactory
from tests.support.nodes import TestNode, link


def _province(nodes: NodeFactory, children: int) -> tuple[TestNode, list[TestNode]]:
    parent = nodes("id-64", "Provinsi Kalimantan Timur")
    kids = [nodes(f"id-64-0{n + 1}", f"Kabupaten {n + 1}") for n in range(children)]
    for kid in kids[:3]:
        link(parent, kid)
    return parent, kids


def _read_for(monkeypatch: pytest.MonkeyPatch) -> list[set[str] | None]:
    """Record the peers whose certificates each refresh reads (None: every link's)."""
    calls: list[set[str] | None] = []
    certificates = keys.pin_certificates

    def recorded(session: Any, peer_ids: Collection[str] | None, now: dt.datetime) -> Any:
        calls.append(None if peer_ids is None else set(peer_ids))
        return certificates(session, peer_ids, now)

    monkeypatch.setattr(keys, "pin_certificates", recorded)
    return calls


def _known(pins: list[links.Pin]) -> dict[str, links.Pin]:
    return {pin.peer_id: pin for pin in pins}


def test_a_refresh_with_nothing_changed_reads_no_certificate(
    nodes: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three children pinned: the first read reads every certificate; a refresh given its
    pins reads none and gives the same pins."""
    parent, _ = _province(nodes, 3)
    p = parent.ctx()
    calls = _read_for(monkeypatch)
    full = links.pins(p)
    again = links.pins(p, _known(full))
    assert calls == [None]
    assert again == full
    assert [pin.peer_id for pin in full] == ["id-64-01", "id-64-02", "id-64-03"]


def _rotate_child(parent: TestNode, kid: TestNode, grace: dt.timedelta) -> None:
    """`kid` rotates its keys and `parent` follows (as the rotation envelope would)."""
    c = kid.ctx()
    rotation.rotate(c, grace)
    [signed] = rotation.own_rotations_of(NodeContext.open(kid.config))
    p = parent.ctx()
    with p.db.write() as session:
        row = queries.get_link(session, c.node_id, lock=True)
        assert row is not None
        rotation.follow(session, p, row, signed, in_band=False)


def test_a_refresh_reads_the_certificates_of_new_and_changed_peers_only(
    nodes: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first read: a fourth child is linked, the second revoked, the third rotates
    its keys (its old certificate pinned for two days). A refresh given the earlier pins
    reads the fourth's and the third's certificates only, and equals a full read; three
    days later the third's old certificate is gone, and a refresh reads the third's alone."""
    parent, kids = _province(nodes, 4)
    p = parent.ctx()
    first = links.pins(p)
    link(parent, kids[3])
    links.revoke(p, "id-64-02", "test")
    _rotate_child(parent, kids[2], dt.timedelta(days=2))
    calls = _read_for(monkeypatch)
    again = links.pins(p, _known(first))
    assert calls == [{"id-64-03", "id-64-04"}]
    assert again == links.pins(p)
    rotated = _known(again)["id-64-03"]
    assert (
        len(rotated.earlier) == 1 and rotated.fingerprint != _known(first)["id-64-03"].fingerprint
    )
    assert _known(again)["id-64-01"] is _known(first)["id-64-01"]
    later = dataclasses.replace(p, clock=FixedClock(p.clock.now() + dt.timedelta(days=3)))
    calls.clear()
    after_grace = links.pins(later, _known(again))
    assert calls == [{"id-64-03"}]
    assert after_grace == links.pins(later)
    assert _known(after_grace)["id-64-03"].earlier == ()
