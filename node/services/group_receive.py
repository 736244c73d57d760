"""Receiving the batches (and recording the Acks) of several links in ONE write transaction
(group commit).

`receive_group` applies each link's batch exactly as exchange.receive_batch does (the same
checks, rows, ledger entries and responses: see node.services.exchange), but inside one
transaction for all of them, each link's batch under its own SAVEPOINT: a batch that
raises is rolled back alone and its link gets the error, while the others commit. A
batch that *refuses* an envelope is not an exception: as in receive_batch, what came
before the refused envelope commits, and the result carries the error.

Steps, in the one transaction:
  0. the links' connection marks (a stream came up or went down since the last group:
     links.mark_connections_in, the latest mark of each peer, one executemany for all of
     them, not a transaction each: connecting 1,200 links was 29 % of the writer's time,
     decision 0043); then each peer's Ack of what this node sent: one statement that
     changes nothing unless the Ack is of envelopes sent; any other goes the single path
     (exchange.acknowledge_in) under its own savepoint: an Ack refused is rolled back
     alone, and only its link gets the error;
  1. lock the group's links (one statement);
  2. the bulk path for all of them at once (bulk.receive_runs): the runs of receipts and
     status updates the children's batches begin with share their lookups and are
     written with one statement of each kind for the whole group, not several per link;
     if it raises, the whole transaction is rolled back and the group is applied again
     without this step, every batch going through step 3 from its start (decision 0043:
     no savepoint of its own, two round trips fewer per group);
  3. each link's batch, from where step 2 left it, by exchange.receive_batch_in, the one
     receive path (unit of work, decision 0027), under the link's own savepoint, so a
     grouped batch refuses, replays and auto-disposes exactly as a lone one does.

Invariants:
  1. a link's result is returned only from a transaction that committed; if the commit
     itself fails, every link of the group gets that error and acknowledges nothing;
  2. batches are applied in the order given; a link appears at most once per group (the
     caller, node.federation.group_commit, sends one batch per link at a time, since a
     link session awaits its commit before it reads its next batch);
  3. a link's envelopes are applied in its sequence order, each checked against the state
     the envelopes applied before it left, whichever link those came from; only the
     order between links differs from applying the batches one after another;
  4. a batch whose step 3 raises is rolled back to the end of step 2: what step 2 took of
     it stays (it was checked and applied in full), the link gets the error and does not
     acknowledge, and its next Hello says how far it was committed;
  5. a batch that step 2 took whole (receipts and status updates: nothing accepted, nothing
     queued) goes through step 3 without a savepoint of its own (decision 0041: a
     SAVEPOINT, a flush of its link row and a RELEASE per link were a quarter of the
     group's time at 1,200 links); step 3 then only counts it and marks its link seen, and
     its links' rows are written together at commit. Should it raise all the same, the
     whole group fails (invariant 1), never one link half-applied.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import federation_pb2
from node.envelopes import OpenedAhead
from node.ids import NodeId
from node.logs import get_logger
from node.services import bulk, links
from node.services.context import NodeContext
from node.services.exchange import MAX_SEQUENCE, BatchResult, acknowledge_in, receive_batch_in
from node.store import queries
from node.store.models import Link

__all__ = ["LinkAck", "LinkBatch", "LinkMark", "commit_group", "receive_group"]

log = get_logger()


@dataclass(frozen=True)
class LinkBatch:
    """One link's deliveries to commit (exchange.receive_batch's arguments)."""

    peer: NodeId
    deliveries: Sequence[federation_pb2.Delivery]
    held: int | None = None
    ahead: OpenedAhead | None = None  # the envelopes opened before (off the writer)


@dataclass(frozen=True)
class LinkAck:
    """One peer's Ack to record (exchange.acknowledge's arguments)."""

    peer: NodeId
    through: int


@dataclass(frozen=True)
class LinkMark:
    """A live stream with `peer` came up (`since` then) or went down (`since` None):
    links.mark_connected's arguments."""

    peer: str
    since: dt.datetime | None


def receive_group(ctx: NodeContext, batches: Sequence[LinkBatch]) -> list[BatchResult | Exception]:
    """Apply every link's batch in one transaction (module steps and invariants); per
    batch, its result or the exception that rolled it back."""
    return commit_group(ctx, batches, ())[0]


def commit_group(
    ctx: NodeContext,
    batches: Sequence[LinkBatch],
    acks: Sequence[LinkAck],
    marks: Sequence[LinkMark] = (),
) -> tuple[list[BatchResult | Exception], list[Exception | None]]:
    """Record the connection marks (in the order given) and the Acks, and apply the
    batches, in one transaction (module steps and invariants); per batch, its result or
    the exception that rolled it back; per Ack, None or the exception that refused it.
    Should the bulk pass (step 2) raise, the transaction is rolled back and the group
    applied again without it (decision 0043: a savepoint around the pass cost two round
    trips to the database in every group for a fault none has shown)."""
    failed: list[Exception] = []
    try:
        return _commit(ctx, batches, acks, marks, failed)
    except Exception:
        if not failed:
            raise
    log.warning("link.group_bulk_failed", links=len(batches), error=type(failed[0]).__name__)
    return _commit(ctx, batches, acks, marks, None)


def _commit(
    ctx: NodeContext,
    batches: Sequence[LinkBatch],
    acks: Sequence[LinkAck],
    marks: Sequence[LinkMark],
    failed: list[Exception] | None,
) -> tuple[list[BatchResult | Exception], list[Exception | None]]:
    """`commit_group`'s transaction: with the bulk pass (`failed` gets what it raised, which
    then rolls back the whole transaction), or without it (`failed` None)."""
    out: list[BatchResult | Exception] = []
    acked: list[Exception | None] = []
    with ctx.db.write() as session:
        if marks:
            links.mark_connections_in(session, [(m.peer, m.since) for m in marks])
        acked = [_acknowledge(session, ctx, ack) for ack in acks]
        # `_locked` keeps the rows the pass locked alive: the session holds only weak references to
        # clean objects, and each batch below reuses its row (queries.held_link).
        _locked, done = _in_bulk(session, ctx, batches, failed)
        for batch in batches:
            took = done.get(batch.peer)
            args = (session, ctx, batch.peer, batch.deliveries, batch.held, took, batch.ahead)
            if _whole(batch, took):  # step 3 has nothing to apply: no savepoint (invariant 5)
                out.append(receive_batch_in(*args))  # what it raises fails the group
                continue
            try:
                with session.begin_nested():
                    out.append(receive_batch_in(*args))
            except Exception as e:  # rolled back to the savepoint: this link alone fails
                out.append(e)
    return out, acked


def _acknowledge(session: Session, ctx: NodeContext, ack: LinkAck) -> Exception | None:
    """Step 0 for one Ack: None, or the exception that refused it. An Ack of envelopes sent
    (the usual one) is one statement that changes nothing otherwise; any other (beyond what
    was sent, not linked, malformed: to be refused or renumbered, decision 0023) goes the
    single path, exchange.acknowledge_in, under a savepoint of its own (decision 0043: a
    SAVEPOINT and a RELEASE per Ack were two of its three round trips)."""
    if 0 <= ack.through <= MAX_SEQUENCE and queries.acknowledge_outbox(
        session, ack.peer, ack.through, ctx.clock.now(), sent_only=True
    ):
        return None
    try:
        with session.begin_nested():
            acknowledge_in(session, ctx, ack.peer, ack.through)
    except Exception as e:  # rolled back to the savepoint: this Ack alone fails
        return e
    return None


def _whole(batch: LinkBatch, took: bulk.RunResult | None) -> bool:
    """Step 2 took all of `batch`, and it took no referral and queued nothing: step 3 only
    counts it into the link's result and marks the link seen (exchange.receive_batch_in),
    which no check of the batch's envelopes can refuse."""
    return (
        took is not None
        and took.taken == len(batch.deliveries)
        and not took.accepted
        and not took.queued
    )


def _in_bulk(
    session: Session,
    ctx: NodeContext,
    batches: Sequence[LinkBatch],
    failed: list[Exception] | None,
) -> tuple[dict[str, Link], dict[str, bulk.RunResult]]:
    """Module steps 1 and 2: the links locked, and what the bulk path took of each link's
    batch, by peer (none when `failed` is None: the group goes again without the pass).
    What the pass raises is added to `failed` and raised on: it rolls back the group."""
    if len(batches) < 2:  # nothing to share: receive_batch_in's own bulk run does the same
        return {}, {}
    links_ = queries.links_for_update(session, [b.peer for b in batches])
    runs = []
    ahead = {}
    for batch in batches:
        link = links_.get(batch.peer)
        if link is not None and link.revoked_at is None and link.suspended_at is None:
            runs.append((link, batch.deliveries))
            if batch.ahead is not None:
                ahead[link.peer_id] = batch.ahead
    if len(runs) < 2 or failed is None:  # nothing to share, or the pass failed before
        return links_, {}
    try:
        results = bulk.receive_runs(session, ctx, runs, ahead)
    except Exception as e:
        failed.append(e)
        raise
    return links_, {link.peer_id: r for (link, _), r in zip(runs, results, strict=True)}
