"""One rule, one path (issue 16): the same random complaints referred and received through
the batched paths (referral._ReferralRun at the parent, bulk.receive_run at the child and
back) and through the one-at-a-time paths (referral._refer, exchange._receive_one) leave
byte-identical ledgers and outboxes on both nodes. Going back up, the child's receipts
come with the status updates of what it did meanwhile (follow-ups and a resolution, with
their notes; a confidential complaint's first follow-up offers a sealing key), in one
batch, as a busy regency sends them. The batched run may open the envelopes ahead of the
receiver's transaction, as a link session does (node.envelopes.OpenedAhead, decision
0041): then each envelope's signature is verified exactly once. Both runs start from the
same two nodes (copied: keys, fence, database) with the clock, message ids and note salts
fixed, so any byte that differs is a difference between the paths."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from node.clock import FixedClock
from node.crypto import sealing
from node.crypto.signing import ENVELOPE_PURPOSE, VerifyKey
from node.ids import MessageId
from node.services import _notes, _outbox, bulk, complaints, lifecycle, referral
from node.store import queries
from node.store.models import Complaint, ComplaintEvent, ComplaintNoteRow, OutboxRow
from tests.fault.conftest import draft
from tests.support.databases import fresh_database
from tests.support.nodes import TestNode, hand_over, link, make_node

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
_examples = itertools.count()

# Each complaint: its status when referred, whether its reporter is confidential, and how
# many of the child's actions (ACTIONS) it took before its receipt went back up.
PLAN = st.lists(
    st.tuples(st.sampled_from(["submitted", "verified"]), st.booleans(), st.integers(0, 3)),
    min_size=1,
    max_size=6,
)
ACTIONS = (
    (lifecycle.follow_up, "Tim sudah turun ke lokasi"),
    (lifecycle.follow_up, "Perbaikan dijadwalkan"),
    (lifecycle.resolve, "Jalan sudah diperbaiki"),
)


def _fixed_ids() -> Iterator[MessageId]:
    """UUIDv7s (RFC 9562 section 5.7) from a counter: the same sequence in both runs."""
    for n in itertools.count(1):
        value = (1_772_000_000_000 << 80) | (0x7 << 76) | (0b10 << 62) | n
        yield MessageId(str(uuid.UUID(int=value)))


def _written(node: TestNode) -> tuple[list[bytes], list[bytes], list[tuple[Any, ...]]]:
    """The node's ledger entries and its outbox envelope bodies, in order; and its
    complaints, their events and notes (every column but row ids)."""
    with node.ctx().db.read() as session:
        ledger = [row.entry for row in queries.iter_ledger(session)]
        outbox = list(session.scalars(select(OutboxRow.body).order_by(OutboxRow.id)))
        rows: list[tuple[Any, ...]] = []
        for model in (Complaint, ComplaintEvent, ComplaintNoteRow):
            names = [c.name for c in model.__table__.columns if c.name != "id"]
            rows.extend(
                (model.__name__, *row)
                for row in session.execute(select(*(model.__table__.c[n] for n in names)))
            )
    return ledger, outbox, sorted(rows, key=repr)


@contextmanager
def _pair(root: Path) -> Iterator[tuple[TestNode, TestNode]]:
    with (
        fresh_database("sqlite", root, migrated=True) as p_url,
        fresh_database("sqlite", root, migrated=True) as c_url,
    ):
        parent = make_node(root, "id-64", "Provinsi Kalimantan Timur", p_url)
        child = make_node(root, "id-64-02", "Kabupaten Kutai Kartanegara", c_url)
        try:
            link(parent, child)
            yield parent, child
        finally:
            parent.close()
            child.close()


def _counted(tag: int) -> Iterator[bytes]:
    """32-byte values from a counter (note salts, sealing nonces, ephemeral keys): the same
    sequence in both runs."""
    for n in itertools.count(1):
        yield bytes([tag]) + n.to_bytes(31, "big")


def _run(
    parent: TestNode,
    child: TestNode,
    ids: list[str],
    actions: list[int],
    offers: int,
    *,
    batched: bool,
    monkeypatch: pytest.MonkeyPatch,
    ahead: bool = False,
) -> list[tuple[list[bytes], list[bytes], list[tuple[Any, ...]]]]:
    fresh = _fixed_ids()
    verified: list[bytes] = []  # the envelope signatures verified while handing over
    verify = VerifyKey.verify

    def counting(key: VerifyKey, purpose: bytes, message: bytes, signature: bytes) -> None:
        if purpose == ENVELOPE_PURPOSE:
            verified.append(signature)
        verify(key, purpose, message, signature)

    salts, nonces, ephemeral = _counted(1), _counted(2), _counted(3)
    in_bulk: list[int] = []
    receive_run = bulk.receive_run

    def counted(*args: Any) -> bulk.RunResult:
        run = receive_run(*args)
        in_bulk.append(run.taken)
        return run

    with monkeypatch.context() as patch:
        patch.setattr(_outbox, "new_message_id", lambda now_ms=None: next(fresh))
        patch.setattr(_notes, "os", SimpleNamespace(urandom=lambda _n: next(salts)))
        # A confidential complaint's identity is sealed to the child as its first
        # follow-up offers its key (node.crypto.sealing): a fresh ephemeral key and nonce.
        patch.setattr(sealing, "os", SimpleNamespace(urandom=lambda n: next(nonces)[:n]))
        patch.setattr(
            X25519PrivateKey,
            "generate",
            classmethod(lambda _cls: X25519PrivateKey.from_private_bytes(next(ephemeral))),
        )
        if batched:
            patch.setattr(bulk, "receive_run", counted)
        else:  # every envelope through the one-at-a-time path
            patch.setattr(referral._ReferralRun, "take", lambda _self, _row: None)
            patch.setattr(bulk, "receive_run", lambda *_args: bulk.RunResult())
        for node in (parent, child):
            node.ctx().clock = FixedClock(START + dt.timedelta(days=1))
        complaints.refer_many(parent.ctx(), ids, child.ctx().node_id)
        with monkeypatch.context() as spy:
            spy.setattr(VerifyKey, "verify", counting)
            to_child = hand_over(parent, child, ahead=ahead)
        for tracking_id, count in zip(ids, actions, strict=True):
            for act, note in ACTIONS[:count]:
                act(child.ctx(), tracking_id, note)
        with monkeypatch.context() as spy:
            spy.setattr(VerifyKey, "verify", counting)
            back = hand_over(child, parent, ahead=ahead)
    assert (to_child.error, back.error) == (None, None)
    updates = sum(actions)
    assert to_child.applied == len(ids)
    assert back.applied == len(ids) + updates
    if batched:  # the batched run did take the bulk path: referrals down, receipts up, and
        # status updates but the first follow-ups that offer a sealing key
        assert sum(in_bulk) == 2 * len(ids) + updates - offers
    if ahead:  # opened before the transaction: each envelope verified once, none again
        assert sorted(verified) == sorted(set(verified))
        assert len(verified) == 2 * len(ids) + updates
    return [_written(parent), _written(child)]


@pytest.mark.parametrize("db_kind", ["sqlite"])  # copies database files
@settings(
    max_examples=5,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # each example builds two nodes
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=PLAN, order=st.randoms(use_true_random=False), ahead=st.booleans())
@example(  # opened ahead: a confidential complaint's offer goes the one-at-a-time way
    plan=[("verified", True, 2), ("submitted", False, 3)], order=random.Random(1), ahead=True
)
def test_batched_and_one_at_a_time_paths_write_the_same_bytes(
    db_kind: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    plan: list[tuple[str, bool, int]],
    order: random.Random,
    ahead: bool,
) -> None:
    """Referring a random set of complaints (in random order) and carrying the referrals,
    their receipts and the status updates of the child's actions: the same ledger entries
    and outbox bodies, byte for byte, and the same complaints, events and notes, on the
    parent and on the child, by either path (the batched one with its envelopes opened
    ahead of the transaction or in it)."""
    root = tmp_path / f"example-{next(_examples)}"
    root.mkdir()
    (root / "nodes").mkdir()
    with _pair(root / "nodes") as (parent, child):
        p = parent.ctx()
        p.clock = FixedClock(START)
        drafts = [replace(draft(n), confidential=c) for n, (_, c, _) in enumerate(plan)]
        ids = list(complaints.submit_many(p, drafts))
        for tracking_id, (status, _, _) in zip(ids, plan, strict=True):
            if status == "verified":
                lifecycle.verify(p, tracking_id)
        actions = {t: count for t, (_, _, count) in zip(ids, plan, strict=True)}
        order.shuffle(ids)
        counts = [actions[t] for t in ids]
        offers = sum(1 for _, c, count in plan if c and count)  # confidential, followed up
        parent.close()
        child.close()
        shutil.copytree(root / "nodes", root / "copy")  # folders (keys, fence) and databases
        batched = _run(
            parent, child, ids, counts, offers, batched=True, monkeypatch=monkeypatch, ahead=ahead
        )
    with _pair_copied(root / "copy", parent, child) as (parent2, child2):
        plain = _run(parent2, child2, ids, counts, offers, batched=False, monkeypatch=monkeypatch)
    assert all(ledger and outbox and rows for ledger, outbox, rows in batched)
    assert batched == plain


@contextmanager
def _pair_copied(
    copy: Path, parent: TestNode, child: TestNode
) -> Iterator[tuple[TestNode, TestNode]]:
    """The copied nodes, their node.yaml pointed at the copied databases."""
    copied = []
    for node in (parent, child):
        directory = copy / node.directory.name
        old_db = node.database_url.removeprefix("sqlite:///")
        new_db = str(copy / Path(old_db).name)
        config = directory / "node.yaml"
        config.write_text(config.read_text().replace(str(node.directory), str(directory)))
        config.write_text(config.read_text().replace(old_db, new_db))
        copied.append(
            TestNode(node.node_id, node.name, directory, node.port, f"sqlite:///{new_db}")
        )
    try:
        yield copied[0], copied[1]
    finally:
        for node in copied:
            node.close()
