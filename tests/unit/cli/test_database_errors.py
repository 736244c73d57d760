"""A database the command cannot use is one line telling the operator what to do, never a
traceback, SQL or parameters: a real SQLite write lock held by another connection beyond a
short busy timeout, and PostgreSQL URLs that cannot connect (a closed port; with the test
server up, a missing role and a missing database). Run in process with click's runner."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli.main import cli
from node.services.setup import init_node
from node.store import db
from tests.support.databases import PG_ADMIN_URL, postgres_unavailable
from tests.support.nodes import free_port

SUBMIT = [
    "complaint",
    "submit",
    "--title",
    "Jalan rusak",
    "--description",
    "Lubang di Jl. Melati",
    "--category",
    "infrastruktur",
    "--region",
    "64.02",
]


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("db-errors") / "node"
    url = f"sqlite:///{directory / 'node.db'}"
    init_node(
        directory, "id-64", "Kalimantan Timur", listen=f"127.0.0.1:{free_port()}", database_url=url
    )
    return directory


def _with_url(node_dir: Path, tmp_path: Path, url: str) -> Path:
    """A copy of the node's node.yaml whose database.url is `url`."""
    text = (node_dir / "node.yaml").read_text()
    old = f'url: "sqlite:///{node_dir / "node.db"}"'
    assert old in text
    config = node_dir / f"{tmp_path.name}.yaml"
    config.write_text(text.replace(old, f'url: "{url}"'))
    return config


def _one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error: "), output
    for leak in ("Traceback", "[SQL", "BEGIN", "INSERT", "SELECT", "sqlalche.me"):
        assert leak not in output, output
    return lines[0]


@pytest.fixture
def write_lock(node_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Another connection holds the SQLite write lock; this process waits 0.2 s for it."""
    monkeypatch.setattr(db, "BUSY_TIMEOUT_SECONDS", 0.2)
    holder = sqlite3.connect(node_dir / "node.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.rollback()
        holder.close()


def test_a_locked_sqlite_database_is_told_in_words(node_dir: Path, write_lock: None) -> None:
    """A write while another process holds the lock: exit 1, "database is locked" and what to
    do, and no trace of the statement or the complaint's text."""
    config = str(node_dir / "node.yaml")
    result = CliRunner().invoke(cli, [*SUBMIT, "--config", config])
    assert result.exit_code == 1, result.output
    line = _one_line_error(result.output)
    assert "the database is locked" in line
    assert "lapor-node serve" in line
    assert "Melati" not in result.output


def test_the_same_write_succeeds_once_the_lock_is_gone(node_dir: Path) -> None:
    """The refusal above left nothing behind: without the lock the command works."""
    result = CliRunner().invoke(cli, [*SUBMIT, "--config", str(node_dir / "node.yaml")])
    assert result.exit_code == 0, result.output


def test_a_closed_postgresql_port_is_told_in_words(node_dir: Path, tmp_path: Path) -> None:
    """Nothing listens at the URL's port: exit 1, one line naming the URL and saying to start
    PostgreSQL or correct the address."""
    url = f"postgresql+psycopg://lapor@127.0.0.1:{free_port()}/lapor"
    result = CliRunner().invoke(
        cli, ["complaint", "list", "--config", _with_url(node_dir, tmp_path, url)]
    )
    assert result.exit_code == 1, result.output
    line = _one_line_error(result.output)
    assert "cannot open the database at postgresql+psycopg://lapor@127.0.0.1:" in line
    assert "connection refused" in line
    assert "start PostgreSQL" in line


@pytest.mark.parametrize(
    ("change", "words"),
    [
        pytest.param("role", "PostgreSQL refused the login", id="missing-role"),
        pytest.param("database", "does not exist: create it", id="missing-database"),
    ],
)
def test_a_postgresql_login_or_database_that_fails_is_told_in_words(
    node_dir: Path, tmp_path: Path, change: str, words: str
) -> None:
    """The test server is up, but the role or the database of the URL is not there."""
    if postgres_unavailable():
        pytest.skip(postgres_unavailable() or "")
    server = PG_ADMIN_URL.rsplit("@", 1)[1].rsplit("/", 1)[0]
    role, name = ("no_such_role", "postgres") if change == "role" else ("postgres", "no_such_db")
    url = f"postgresql+psycopg://{role}@{server}/{name}"
    result = CliRunner().invoke(
        cli, ["complaint", "list", "--config", _with_url(node_dir, tmp_path, url)]
    )
    assert result.exit_code == 1, result.output
    assert words in _one_line_error(result.output)
