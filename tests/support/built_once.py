"""A federation built once per test process and database kind, and a private copy of it
for each test: for the tests that read a built tree (reports, the dashboard) and would
otherwise build the same one again, seconds each time.

`copy_of(request, db_kind, tmp_path, build)` runs `build(nodes)` the first time (with the
node factory tests use, in a directory kept for the process), then gives every caller a
copy: each node's directory copied, its database copied (a file, or CREATE DATABASE ...
TEMPLATE), node.yaml pointed at the copy. What `build` returns is a dataclass; in the copy
each TestNode field is the copied node, a FixedClock field a new clock at the same time
(set on every copied node's context), and every other field a deep copy. A test may then
change its copy in any way (advance the clock, write, start the nodes) without touching
the next test's.

Only for trees whose nodes were never started while building: their ports are the ones
chosen then, and the copy keeps them.
"""

from __future__ import annotations

import atexit
import copy
import dataclasses
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from node.clock import FixedClock
from tests.support import databases
from tests.support.nodes import TestNode, make_node

__all__ = ["copy_of"]

T = TypeVar("T")

_built: dict[tuple[Callable[..., Any], str], Any] = {}
_kept: list[Any] = []


def _build(build: Callable[[Callable[[str, str], TestNode]], T], db_kind: str) -> T:
    root = Path(tempfile.mkdtemp(prefix="lapor-frozen-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    made: list[TestNode] = []

    def factory(node_id: str, name: str) -> TestNode:
        cm = databases.fresh_database(db_kind, root, migrated=True)
        url = cm.__enter__()
        _kept.append(cm)  # never exited: the database lives as long as the process
        if db_kind == "postgresql":
            atexit.register(databases.drop_later, url.rsplit("/", 1)[1])
        node = make_node(root, node_id, name, url)
        made.append(node)
        return node

    tree = build(factory)
    for node in made:  # no connection left: a copy needs the database at rest
        if node._ctx is not None:
            node._ctx.close()
            node._ctx = None
    return tree


def _copy_node(node: TestNode, db_kind: str, tmp_path: Path) -> TestNode:
    directory = tmp_path / node.node_id
    shutil.copytree(node.directory, directory)
    if db_kind == "sqlite":
        source = Path(node.database_url.removeprefix("sqlite:///"))
        target = tmp_path / f"node-{uuid.uuid4().hex[:8]}.db"
        for suffix in ("", "-wal"):
            if Path(f"{source}{suffix}").exists():
                shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
        url = f"sqlite:///{target}"
    else:
        url = databases.copy_database(node.database_url)
    config = directory / "node.yaml"
    text = config.read_text()
    assert text.count(node.database_url) == 1, "node.yaml names its database once"
    config.write_text(text.replace(node.database_url, url))
    return TestNode(node.node_id, node.name, directory, node.port, url)


def copy_of(
    request: pytest.FixtureRequest,
    db_kind: str,
    tmp_path: Path,
    build: Callable[[Callable[[str, str], TestNode]], T],
) -> T:
    """This test's own copy of what `build` made (built once per process and kind)."""
    key = (build, db_kind)
    if key not in _built:
        _built[key] = _build(build, db_kind)
    frozen = _built[key]
    assert dataclasses.is_dataclass(frozen) and not isinstance(frozen, type)
    copies: list[TestNode] = []
    clocks: dict[int, FixedClock] = {}
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(frozen):
        value = getattr(frozen, f.name)
        if isinstance(value, TestNode):
            changes[f.name] = _copy_node(value, db_kind, tmp_path)
            copies.append(changes[f.name])
        elif isinstance(value, FixedClock):
            changes[f.name] = clocks.setdefault(id(value), FixedClock(value.now()))
        else:
            changes[f.name] = copy.deepcopy(value)
    if len(clocks) == 1:
        (clock,) = clocks.values()
        for node in copies:
            node.ctx().clock = clock
    if db_kind == "postgresql":  # finalizers run last first: the nodes close, then this
        names = [node.database_url.rsplit("/", 1)[1] for node in copies]
        request.addfinalizer(lambda: [databases.drop_later(name) for name in names])
    request.node._lapor_nodes = copies  # their logs in a failure's report (tests/conftest.py)
    request.addfinalizer(lambda: [node.close() for node in copies])
    return dataclasses.replace(frozen, **changes)
