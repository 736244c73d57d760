"""Shared fixtures: a database of each kind, and real nodes."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from tests.support.databases import fresh_database
from tests.support.nodes import TestNode, make_node, stop_together

DB_KINDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


SCRATCH_ENV = "LAPOR_TEST_TMPDIR"
SCRATCH_MIN_FREE = 2 << 30


def pytest_configure(config: pytest.Config) -> None:
    """Test scratch (tmp_path, the nodes' directories and SQLite databases, every tempfile)
    in memory when the machine has a tmpfs at /dev/shm with room, unless TMPDIR or
    LAPOR_TEST_TMPDIR (a directory, or "" for the default) says otherwise. A test node's
    SQLite commits each fsync (synchronous=FULL) and a run makes and removes some 30,000
    files; on this machine's disk (ext4 mounted with `discard`) an fsync costs 2-3 ms and an
    unlink 0.6 ms. Nothing a test checks depends on the disk: a killed process's writes
    are in the page cache either way (decision 0045). Set before xdist starts its workers,
    which inherit it."""
    del config
    if "TMPDIR" in os.environ:
        return
    chosen = os.environ.get(SCRATCH_ENV)
    if chosen is None:
        shm = Path("/dev/shm")
        try:
            roomy = shutil.disk_usage(shm).free >= SCRATCH_MIN_FREE and os.access(shm, os.W_OK)
        except OSError:
            roomy = False
        if not roomy:
            return
        chosen = str(shm / f"lapor-tests-{os.getuid()}")
    if not chosen:
        return
    # Traversable by others: the HA cluster's members run as the postgres user inside it.
    try:
        Path(chosen).mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError:
        return
    if not os.access(chosen, os.W_OK | os.X_OK):  # made by someone else: the default, then
        return
    os.environ["TMPDIR"] = chosen
    tempfile.tempdir = None  # computed again from TMPDIR


@pytest.fixture(autouse=True)
def _structlog_as_found() -> Iterator[None]:
    """Each test starts from the logging configuration the test before it found: an
    in-process command (`serve`, the CLI) configures structlog for its whole process, and
    a level set there must not hide the events a later test captures."""
    config = structlog.get_config()
    yield
    structlog.configure(**config)


@pytest.fixture(params=DB_KINDS)
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(db_kind: str, tmp_path: Path) -> Iterator[str]:
    with fresh_database(db_kind, tmp_path) as url:
        yield url


NodeFactory = Callable[[str, str], TestNode]


LOG_TAIL_LINES = 40


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test that started nodes shows the end of each node's log in its report: a
    failure seen once in CI can then be read, not only re-run."""
    report = yield
    made = getattr(item, "_lapor_nodes", None)
    if report.failed and made:
        for node in made:
            if node.log_path.exists():
                tail = node.log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
                report.sections.append((f"log of {node.node_id}", "\n".join(tail)))
    return report


@pytest.fixture
def nodes(db_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[NodeFactory]:
    """Make initialised nodes (each with its own fresh database of this run's kind);
    every node is stopped and its database dropped at the end."""
    made: list[TestNode] = []
    request.node._lapor_nodes = made
    stack: list[object] = []

    def factory(node_id: str, name: str) -> TestNode:
        cm = fresh_database(db_kind, tmp_path, migrated=True)
        url = cm.__enter__()
        stack.append(cm)
        node = make_node(tmp_path, node_id, name, url)
        made.append(node)
        return node

    yield factory
    stop_together(*made)
    for node in made:
        node.close()
    for cm in reversed(stack):
        cm.__exit__(None, None, None)  # type: ignore[attr-defined]
