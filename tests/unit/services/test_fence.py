"""The signing fence (node.services.fence) and the one-serve lock (node.services.datadir):
a node refuses to sign over a database that does not extend what it already signed."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from node.errors import ConfigError, FenceError
from node.services import checkpoints, datadir, fence
from node.services._ledger import record
from node.services.context import NodeContext
from tests.conftest import NodeFactory
from tests.support.databases import copy_database, drop_later, fresh_database
from tests.support.factories import link_entry
from tests.support.nodes import TestNode


def _append(ctx: NodeContext, count: int, start: int = 0) -> None:
    with ctx.db.write() as session:
        for n in range(start, start + count):
            record(session, ctx, link_entry(n))


def _fenced_size(ctx: NodeContext) -> int | None:
    found = fence.read(ctx.config)
    return None if found is None else found.size


def _use_database(node: TestNode, url: str) -> NodeContext:
    """Point the node's node.yaml at another database, as an operator restoring or
    recreating one would, and open it (upgraded to head, as `serve` does)."""
    node.close()
    config = node.config.read_text()
    old = node.database_url
    assert old in config
    node.config.write_text(config.replace(old, url))
    node.database_url = url
    return NodeContext.open(node.config, upgrade=True)


def _copy_database(node: TestNode, tmp_path: Path, db_kind: str) -> str:
    """A copy of the node's database as it is now (a backup); the node's own connections
    are closed first."""
    node.close()
    if db_kind == "sqlite":
        src = Path(node.database_url.removeprefix("sqlite:///"))
        dst = tmp_path / f"backup-{src.name}"
        shutil.copy(src, dst)
        return f"sqlite:///{dst}"
    return copy_database(node.database_url)


def _drop_copy(url: str) -> None:
    """Dropped beside the next tests, as every test database is (DROP DATABASE waits for a
    server checkpoint: tests/support/databases.py)."""
    if url.startswith("postgresql"):
        drop_later(url.rsplit("/", 1)[1])


def test_each_signature_advances_the_fence_durably_and_privately(nodes: NodeFactory) -> None:
    """A signed checkpoint is in the fence file (0600) once its transaction commits."""
    ctx = nodes("id-64", "Provinsi Kalimantan Timur").ctx()
    _append(ctx, 3)
    signed, made = checkpoints.sign(ctx)
    assert made
    found = fence.read(ctx.config)
    assert found is not None
    assert (found.size, found.checkpoint.root, found.note) == (3, signed.root, signed.note)
    assert stat.S_IMODE(found.path.stat().st_mode) == 0o600
    _append(ctx, 2, start=3)
    checkpoints.sign(ctx)
    assert _fenced_size(ctx) == 5


def test_a_rolled_back_signature_leaves_the_fence_where_it_was(nodes: NodeFactory) -> None:
    """A checkpoint signed in a transaction that rolls back never reaches the fence."""
    ctx = nodes("id-64", "Provinsi Kalimantan Timur").ctx()
    _append(ctx, 2)
    checkpoints.sign(ctx)
    with pytest.raises(RuntimeError), ctx.db.write() as session:
        record(session, ctx, link_entry(9))
        checkpoints.sign_in(session, ctx)
        raise RuntimeError("the use case failed after signing")
    assert _fenced_size(ctx) == 2
    _append(ctx, 1, start=2)
    checkpoints.sign(ctx)  # the tree without the rolled-back entry is still signable
    assert _fenced_size(ctx) == 3


def test_a_signature_in_a_rolled_back_savepoint_leaves_the_fence_where_it_was(
    nodes: NodeFactory,
) -> None:
    """A checkpoint signed inside a savepoint that rolls back (an auto-disposition or one
    envelope of a batch that failed) never reaches the fence, though the transaction around
    it commits: the fence stays within the committed ledger, and the node starts again."""
    ctx = nodes("id-64", "Provinsi Kalimantan Timur").ctx()
    _append(ctx, 2)
    checkpoints.sign(ctx)
    with ctx.db.write() as session:
        record(session, ctx, link_entry(8))  # committed: size 3
        with pytest.raises(RuntimeError), session.begin_nested():
            record(session, ctx, link_entry(9))
            checkpoints.sign_in(session, ctx)  # over size 4, rolled back
            raise RuntimeError("the disposition failed after signing")
    assert _fenced_size(ctx) == 2
    with ctx.db.write() as session, session.begin_nested():
        checkpoints.sign_in(session, ctx)  # released: commits with the transaction
    assert _fenced_size(ctx) == 3
    fence.check_node_at_start(ctx)


def test_the_fence_never_moves_back(nodes: NodeFactory) -> None:
    """Two processes of one node may finish out of order; the file keeps the larger tree."""
    ctx = nodes("id-64", "Provinsi Kalimantan Timur").ctx()
    _append(ctx, 4)
    small, _ = checkpoints.sign(ctx)
    _append(ctx, 4, start=4)
    large, _ = checkpoints.sign(ctx)
    assert not fence.advance(ctx.config, small.note, small.size)
    found = fence.read(ctx.config)
    assert found is not None
    assert found.note == large.note


def test_an_empty_database_under_signed_keys_refuses_to_sign(
    nodes: NodeFactory, db_kind: str, tmp_path: Path
) -> None:
    """Deleting the database and starting again would sign a second history: refused."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    config = node.ctx().config
    _append(node.ctx(), 3)
    checkpoints.sign(node.ctx())
    with fresh_database(db_kind, tmp_path, migrated=True) as url:
        ctx = _use_database(node, url)
        try:
            with (
                pytest.raises(FenceError, match="expected a ledger of at least 3 entries"),
                ctx.db.write() as session,
            ):
                fence.check_at_start(session, ctx.config, checkpoints.origin(ctx))
            _append(ctx, 1)
            with pytest.raises(FenceError, match="deleted, rolled back or restored"):
                checkpoints.sign(ctx)
        finally:
            ctx.close()
    found = fence.read(config)
    assert found is not None
    assert found.size == 3


def test_an_older_copy_of_the_database_refuses_to_sign(
    nodes: NodeFactory, db_kind: str, tmp_path: Path
) -> None:
    """A backup restored from before the last signature: refused, even once it grows past
    the fenced size again (its history is then another one)."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    _append(node.ctx(), 2)
    checkpoints.sign(node.ctx())
    backup = _copy_database(node, tmp_path, db_kind)
    try:
        _append(node.ctx(), 3, start=2)
        checkpoints.sign(node.ctx())
        ctx = _use_database(node, backup)
        try:
            with pytest.raises(FenceError, match="at least 5 entries"), ctx.db.write() as s:
                fence.check_at_start(s, ctx.config, checkpoints.origin(ctx))
            _append(ctx, 4, start=100)  # a different history, longer than the fenced one
            with pytest.raises(FenceError, match="rewritten"):
                checkpoints.sign(ctx)
        finally:
            ctx.close()
    finally:
        node.close()
        _drop_copy(backup)


def test_another_nodes_fence_is_refused(nodes: NodeFactory) -> None:
    """A keys folder mixed with another node's fence: the origins differ, refused."""
    a = nodes("id-64", "Provinsi Kalimantan Timur")
    b = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    _append(b.ctx(), 1)
    checkpoints.sign(b.ctx())
    shutil.copy(fence.fence_path(b.ctx().config), fence.fence_path(a.ctx().config))
    _append(a.ctx(), 1)
    with pytest.raises(FenceError, match="belongs to another node"):
        checkpoints.sign(a.ctx())


def test_a_node_without_a_fence_gets_one_from_its_latest_checkpoint(nodes: NodeFactory) -> None:
    """Upgrading from a version without the fence: the first start writes it."""
    ctx = nodes("id-64", "Provinsi Kalimantan Timur").ctx()
    _append(ctx, 3)
    signed, _ = checkpoints.sign(ctx)
    fence.fence_path(ctx.config).unlink()
    with ctx.db.write() as session:
        found = fence.check_at_start(session, ctx.config, checkpoints.origin(ctx))
    assert found is not None
    assert (found.size, found.note) == (3, signed.note)


def test_a_fence_that_is_not_a_checkpoint_is_refused(nodes: NodeFactory) -> None:
    """A damaged fence file stops signing with a message naming it."""
    ctx = nodes("id-64", "Provinsi Kalimantan Timur").ctx()
    _append(ctx, 1)
    checkpoints.sign(ctx)
    fence.fence_path(ctx.config).write_bytes(b"not a note")
    _append(ctx, 1, start=1)
    with pytest.raises(FenceError, match="to hold a signed checkpoint"):
        checkpoints.sign(ctx)


def test_a_second_serve_of_one_node_cannot_take_its_data_directory(nodes: NodeFactory) -> None:
    """The data directory's lock is exclusive and names its holder; released, it is free."""
    ctx = nodes("id-64", "Provinsi Kalimantan Timur").ctx()
    held = datadir.hold(ctx.config)
    try:
        with pytest.raises(ConfigError, match=r"serve` \(pid \d+\) is already running"):
            datadir.hold(ctx.config)
    finally:
        held.release()
    datadir.hold(ctx.config).release()
