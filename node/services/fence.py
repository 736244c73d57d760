"""The signing fence: the largest checkpoint this node has signed, kept outside the database.

A node must never sign two histories (DESIGN.md, "Operating invariants"). The database
alone cannot promise that: deleted, restored from an older backup, copied from another
node or rewritten, it would let the node sign a second history under the same key, one
that its peers already hold checkpoints of. So the signed note of the largest checkpoint
this node has committed is also kept in a small file beside its keys
(`<keys folder>/signed-checkpoint`, mode 0600).

Invariants:
  1. The file only grows: it is replaced (write, fsync, atomic rename, fsync of the folder)
     only by a note of a larger tree, under an exclusive lock on `signed-checkpoint.lock`,
     so processes of one node (serve, the CLI) never move it back.
  2. It is written when the transaction that signed the checkpoint commits, before that
     commit returns, and so before the note can be sent to anyone. A transaction rolled back
     leaves the file as it was. A crash between the database's commit and the file's
     replace leaves the file one checkpoint behind: weaker, never wrong.
  3. Before each signature (node.services.checkpoints.sign_in) and when `serve` starts
     (`check_at_start`), the node checks that its ledger is a consistent extension of the
     fenced checkpoint: the same origin, a size at least the fenced one, the same root at
     the fenced size. If not, it refuses (FenceError) and says what happened and what to do.
  4. A node upgraded from a version without the fence gets one at its first start: the
     latest checkpoint its database holds, once the database's own checks pass.
  5. The only way back: the recovery path (node.services.recovery, ADR 0023). Its one
     transaction records a signed discontinuity at index r, hands over to a new key and
     signs the first checkpoint of the new generation (size r + 1, new key); inside that
     transaction the check accepts a ledger that restarts at r with the stated root
     (`restart_at_commit`), and at its commit the fence is REPLACED by that new note, the
     one time the file moves back (`replace`). A crash between that commit and the
     replace is finished at the next start (`check_at_start`): the recorded statement
     names the fenced note as the history it ended.
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from node.config import NodeConfig
from node.errors import FenceError, NodeError
from node.ledger.checkpoint import Checkpoint, origin_for
from node.ledger.note import split_note
from node.services import _discontinuities
from node.store import tree
from node.store.models import CheckpointRow

if TYPE_CHECKING:
    from node.services.context import NodeContext

__all__ = [
    "FENCE_NAME",
    "Fence",
    "advance",
    "advance_at_commit",
    "check_at_start",
    "check_in",
    "check_node_at_start",
    "fence_path",
    "read",
    "replace",
    "restart_at_commit",
]

FENCE_NAME = "signed-checkpoint"
_PENDING = "lapor_node.fence.pending"
_RESTART = "lapor_node.fence.restart"
RECOVERY_HINT = (
    "Do not start this node on this database: its peers hold checkpoints of the fenced "
    "history, and signing another one would fork its ledger. Restore the most recent copy of "
    "this node's database (docs/operator-guide.md, 'The signing fence'), or, if no copy holds "
    "the fenced history, take the recovery path: lapor-node backup restore FOLDER --recover "
    '--reason "..." (docs/operator-guide.md, "Recovering from a lost database").'
)


@dataclass(frozen=True)
class Fence:
    """The fenced checkpoint: the note exactly as signed, and what its body says."""

    path: Path
    checkpoint: Checkpoint
    note: bytes

    @property
    def size(self) -> int:
        return self.checkpoint.size


def fence_path(config: NodeConfig) -> Path:
    """The fence file of the node configured by `config`: beside its signing key."""
    return config.signing_key.parent / FENCE_NAME


# A process-wide cache of parsed fences, keyed by path and invalidated by the file's
# (mtime, size, inode): the check before each signature then costs one stat().
_cache: dict[Path, tuple[tuple[int, int, int], Fence]] = {}


def read(config: NodeConfig) -> Fence | None:
    """The fence of this node, or None if it has none yet. Raises FenceError if the file
    exists but is not a checkpoint note."""
    path = fence_path(config)
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    note = path.read_bytes()
    try:
        text, _ = split_note(note)
        checkpoint = Checkpoint.parse(text)
    except NodeError as e:
        raise FenceError(
            f"expected the signing fence {path} to hold a signed checkpoint, found something "
            f"else ({e}); it is written only by this node: restore it from the backup of this "
            f"node's keys folder"
        ) from e
    fence = Fence(path, checkpoint, note)
    _cache[path] = (stamp, fence)
    return fence


def check_in(
    session: Session,
    config: NodeConfig,
    origin: str,
    size: int,
    latest: CheckpointRow | None = None,
) -> None:
    """Raise FenceError unless the ledger in `session`, at `size` entries, is a consistent
    extension of the fenced checkpoint (invariant 3). `latest` is the database's latest
    checkpoint if the caller has read it (and verified it against the tree). No query when
    the fence is that checkpoint; one root computation, O(log n) reads, otherwise."""
    fence = read(config)
    if fence is None:
        return
    restart = session.info.get(_RESTART)
    # Invariant 5: the recovery transaction's own signature, over a ledger that restarts at
    # the stated size and root (its discontinuity entry is at that index).
    if (
        restart is not None
        and size > restart[0]
        and hmac.compare_digest(tree.root(session, restart[0]), restart[1])
    ):
        return
    cp = fence.checkpoint
    if cp.origin != origin:
        raise FenceError(
            f"expected the signing fence {fence.path} to be of {origin}, found one of "
            f"{cp.origin}: this database or keys folder belongs to another node. {RECOVERY_HINT}"
        )
    if size < cp.size:
        raise FenceError(
            f"expected a ledger of at least {cp.size} entries (this node signed a checkpoint "
            f"of that size, kept in {fence.path}), found {size}: the database was deleted, "
            f"rolled back or restored from an older copy. {RECOVERY_HINT}"
        )
    if cp.size == 0:
        return
    if latest is not None and latest.size == cp.size and hmac.compare_digest(latest.root, cp.root):
        found = latest.root
    else:
        found = tree.root(session, cp.size)
    if not hmac.compare_digest(found, cp.root):
        raise FenceError(
            f"expected the ledger's first {cp.size} entries to have the root this node signed "
            f"({cp.root.hex()}, kept in {fence.path}), found {found.hex()}: the ledger was "
            f"rewritten, or the database is another node's or another history's. {RECOVERY_HINT}"
        )


def advance(config: NodeConfig, note: bytes, size: int) -> bool:
    """Make `note` (a checkpoint of `size` entries) the fence unless the fence already
    covers a tree at least that large (invariant 1). True if the file was replaced."""
    path = fence_path(config)
    with _locked(path):
        current = read(config)
        if current is not None and current.size >= size:
            return False
        _write(path, note)
        return True


def _write(path: Path, note: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, note)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)
    _fsync_dir(path.parent)


def replace(config: NodeConfig, note: bytes) -> None:
    """Make `note` the fence whatever the fence holds (invariant 5: recovery only)."""
    path = fence_path(config)
    with _locked(path):
        _write(path, note)


def restart_at_commit(
    session: Session, config: NodeConfig, restart_size: int, restart_root: bytes
) -> None:
    """In the recovery transaction (invariant 5): let `check_in` accept the ledger that
    restarts at `restart_size` with `restart_root`, and at commit replace the fence with
    the note this transaction signs (the first of the new key generation)."""
    session.info[_RESTART] = (restart_size, restart_root, config)


def advance_at_commit(session: Session, config: NodeConfig, note: bytes, size: int) -> None:
    """Advance the fence to `note` when `session`'s transaction commits (invariant 2), unless
    the savepoint it was signed in rolls back first (the entries it covers are gone then)."""
    signed_in = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append((signed_in, config, note, size))


def check_at_start(session: Session, config: NodeConfig, origin: str) -> Fence | None:
    """At `serve`'s start: check the ledger against the fence; write the first fence of a
    node that has none yet from its latest stored checkpoint (invariant 4)."""
    size = tree.lock_head(session)
    fence = read(config)
    if fence is None:
        latest = tree.latest_checkpoint(session)
        if latest is not None:
            advance(config, latest.note, latest.size)
        return read(config)
    try:
        check_in(session, config, origin, size)
    except FenceError:
        if not _recovered_from(session, fence):
            raise
        latest = tree.latest_checkpoint(session)
        assert latest is not None  # the recovery signed one
        replace(config, latest.note)  # invariant 5, finished after a crash
        return read(config)
    return fence


def _recovered_from(session: Session, fence: Fence) -> bool:
    """The recovery path committed its discontinuity, which ends exactly the fenced
    history, but crashed before it replaced the fence (invariant 5)."""
    gap = _discontinuities.own_latest(session)
    return (
        gap is not None
        and hmac.compare_digest(gap.fenced_note, fence.note)
        and hmac.compare_digest(tree.root(session, gap.restart_size), gap.restart_root)
    )


def check_node_at_start(ctx: NodeContext) -> Fence | None:
    """`check_at_start` for the node of `ctx`, in a write transaction of its own."""
    with ctx.db.write() as session:
        return check_at_start(session, ctx.config, origin_for(ctx.node_id))


@event.listens_for(Session, "after_commit")
def _write_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    restart = session.info.pop(_RESTART, None)
    if pending:
        _, config, note, size = max(pending, key=lambda p: p[3])
        if restart is not None:
            replace(config, note)
        else:
            advance(config, note, size)


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: Any) -> None:
    """A rolled-back savepoint (or the whole transaction) takes the checkpoints signed inside
    it along: they cover entries that will never commit, and a fence over them would stop
    the node at its next start (its ledger shorter than what it fenced)."""
    pending = session.info.get(_PENDING)
    if pending:
        session.info[_PENDING] = [p for p in pending if not _inside(p[0], previous_transaction)]


def _inside(transaction: Any, ancestor: Any) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_transaction_end")
def _drop_pending(session: Session, transaction: Any) -> None:
    # The outermost transaction ended without a commit (after_commit took it otherwise). A
    # savepoint released keeps what was signed in it: the outer transaction commits it.
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_RESTART, None)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[Any]:
    fd = os.open(path.with_name(path.name + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
