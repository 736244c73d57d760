"""One rule, one path (issue 16): the same random complaints referred and received through
the batched paths (referral._ReferralRun at the parent, bulk.receive_run at the child and
back) and through the one-at-a-time paths (referral._refer, exchange._receive_one) leave
byte-identical ledgers and outboxes on both nodes. Both runs start from the same two
nodes (copied: keys, fence, database) with the clock and message ids fixed, so any byte
that differs is a difference between the paths."""

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
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from node.clock import FixedClock
from node.ids import MessageId
from node.services import _outbox, bulk, complaints, lifecycle, referral
from node.store import queries
from node.store.models import OutboxRow
from tests.fault.conftest import draft
from tests.support.databases import fresh_database
from tests.support.nodes import TestNode, hand_over, link, make_node

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
_examples = itertools.count()

# Each complaint: its status when referred, and whether its reporter is confidential.
PLAN = st.lists(
    st.tuples(st.sampled_from(["submitted", "verified"]), st.booleans()),
    min_size=1,
    max_size=6,
)


def _fixed_ids() -> Iterator[MessageId]:
    """UUIDv7s (RFC 9562 section 5.7) from a counter: the same sequence in both runs."""
    for n in itertools.count(1):
        value = (1_772_000_000_000 << 80) | (0x7 << 76) | (0b10 << 62) | n
        yield MessageId(str(uuid.UUID(int=value)))


def _written(node: TestNode) -> tuple[list[bytes], list[bytes]]:
    """The node's ledger entries and its outbox envelope bodies, in order."""
    with node.ctx().db.read() as session:
        ledger = [row.entry for row in queries.iter_ledger(session)]
        outbox = list(session.scalars(select(OutboxRow.body).order_by(OutboxRow.id)))
    return ledger, outbox


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


def _run(
    parent: TestNode,
    child: TestNode,
    ids: list[str],
    *,
    batched: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> list[tuple[list[bytes], list[bytes]]]:
    fresh = _fixed_ids()
    in_bulk: list[int] = []
    receive_run = bulk.receive_run

    def counted(*args: Any) -> bulk.RunResult:
        run = receive_run(*args)
        in_bulk.append(run.taken)
        return run

    with monkeypatch.context() as patch:
        patch.setattr(_outbox, "new_message_id", lambda now_ms=None: next(fresh))
        if batched:
            patch.setattr(bulk, "receive_run", counted)
        else:  # every envelope through the one-at-a-time path
            patch.setattr(referral._ReferralRun, "take", lambda _self, _row: None)
            patch.setattr(bulk, "receive_run", lambda *_args: bulk.RunResult())
        for node in (parent, child):
            node.ctx().clock = FixedClock(START + dt.timedelta(days=1))
        complaints.refer_many(parent.ctx(), ids, child.ctx().node_id)
        to_child = hand_over(parent, child)
        back = hand_over(child, parent)
    assert (to_child.error, back.error) == (None, None)
    assert to_child.applied == back.applied == len(ids)
    if batched:  # the batched run did take the bulk path: referrals down, receipts up
        assert sum(in_bulk) == 2 * len(ids)
    return [_written(parent), _written(child)]


@pytest.mark.parametrize("db_kind", ["sqlite"])  # copies database files
@settings(
    max_examples=5,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # each example builds two nodes
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=PLAN, order=st.randoms(use_true_random=False))
def test_batched_and_one_at_a_time_paths_write_the_same_bytes(
    db_kind: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    plan: list[tuple[str, bool]],
    order: random.Random,
) -> None:
    """Referring a random set of complaints (in random order) and carrying the referrals
    and their receipts: the same ledger entries and outbox bodies, byte for byte, on the
    parent and on the child, by either path."""
    root = tmp_path / f"example-{next(_examples)}"
    root.mkdir()
    (root / "nodes").mkdir()
    with _pair(root / "nodes") as (parent, child):
        p = parent.ctx()
        p.clock = FixedClock(START)
        drafts = [replace(draft(n), confidential=c) for n, (_, c) in enumerate(plan)]
        ids = list(complaints.submit_many(p, drafts))
        for tracking_id, (status, _) in zip(ids, plan, strict=True):
            if status == "verified":
                lifecycle.verify(p, tracking_id)
        order.shuffle(ids)
        parent.close()
        child.close()
        shutil.copytree(root / "nodes", root / "copy")  # folders (keys, fence) and databases
        batched = _run(parent, child, ids, batched=True, monkeypatch=monkeypatch)
    with _pair_copied(root / "copy", parent, child) as (parent2, child2):
        plain = _run(parent2, child2, ids, batched=False, monkeypatch=monkeypatch)
    assert all(ledger and outbox for ledger, outbox in batched)
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
