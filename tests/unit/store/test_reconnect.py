"""Reaching a PostgreSQL primary among several hosts (a libpq multi-host URL), and running a
write again only when it surely did not commit (node.store.db.retry_uncommitted)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from node.config import load_config, render_config
from node.errors import ConfigError
from node.store import db as db_module
from node.store.db import Database, DatabaseUnavailableError, retry_uncommitted
from tests.support.databases import fresh_database
from tests.support.nodes import free_port


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path, migrated=True) as url:
        yield url


@pytest.mark.parametrize("form", ["repeated", "comma"])
def test_a_multi_host_url_reaches_the_writable_host(pg_url: str, form: str) -> None:
    """The first host is down: libpq tries the next and the node writes there."""
    url = make_url(pg_url)
    dead = free_port()
    live = f"{url.host}:{url.port or 5432}"
    if form == "repeated":
        query = f"host=127.0.0.1:{dead}&host={live}"
    else:
        query = f"host=127.0.0.1,{url.host}&port={dead},{url.port or 5432}"
    multi = f"postgresql+psycopg://{url.username}@/{url.database}?{query}"
    db = Database(multi + "&target_session_attrs=read-write")
    try:
        db.check_reachable()
        with db.write() as session:
            port = session.execute(text("SELECT inet_server_port()")).scalar_one()
        assert port == (url.port or 5432)
    finally:
        db.dispose()


def test_a_write_lost_before_commit_runs_again_and_an_unknown_outcome_does_not() -> None:
    """committed False: tried again until it succeeds; committed None: raised at once."""
    calls: list[int] = []

    def flaky(n: int) -> int:
        calls.append(n)
        if len(calls) < 3:
            raise DatabaseUnavailableError("lost before commit", committed=False)
        return n

    assert retry_uncommitted(flaky, 7) == 7
    assert calls == [7, 7, 7]

    def unsure() -> None:
        calls.append(0)
        raise DatabaseUnavailableError("lost during commit", committed=None)

    calls.clear()
    with pytest.raises(DatabaseUnavailableError, match="during commit"):
        retry_uncommitted(unsure)
    assert calls == [0]


def test_hosts_listed_before_the_database_name_are_refused_naming_the_form_to_use(
    tmp_path: Path,
) -> None:
    """SQLAlchemy cannot read `user@h1:5432,h2:5432/db`: node.yaml says so in one line and
    shows the query form; the query form loads."""
    rendered = render_config("id-64", "Provinsi Kalimantan Timur", listen="127.0.0.1:7411")
    path = tmp_path / "node.yaml"
    bad = "postgresql+psycopg://lapor@db1:5432,db2:5432/lapor"
    path.write_text(rendered.replace('url: "sqlite:///node.db"', f'url: "{bad}"'))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "database.url" in message and "?host=db1:5432&host=db2:5432" in message
    assert "\n" not in message
    good = "postgresql+psycopg://lapor@/lapor?host=db1:5432&host=db2:5432"
    path.write_text(rendered.replace('url: "sqlite:///node.db"', f'url: "{good}"'))
    assert load_config(path).database_url == good


def _terminate(db: Database, pid: int) -> None:
    """End the server process `pid` (a pooled connection of `db`), from another connection,
    and return once it has exited (the timeout form waits for that: PostgreSQL 14+)."""
    other = Database(db.url)
    try:
        with other.read() as session:
            ended = session.execute(
                text("SELECT pg_terminate_backend(:pid, 60000)"), {"pid": pid}
            ).scalar_one()
        assert ended, f"server process {pid} did not exit within 60 s"
    finally:
        other.dispose()


def _writer_pid(db: Database) -> int:
    with db.write() as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_the_writers_connection_is_pinged_only_after_it_sat_idle(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes back to back reuse the writer's connection without a ping; one after it sat
    idle for PING_AFTER_IDLE_SECONDS pings it first (decision 0043). The limit is set per
    step, not waited out: a long one (no write here sits that idle, however slow the
    machine), then none (every checkout has sat idle that long)."""
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 3600.0)
    db = Database(pg_url)
    pings: list[object] = []
    ping = db._writer.dialect.do_ping

    def counted(conn: object) -> bool:
        pings.append(conn)
        return ping(conn)  # type: ignore[arg-type]

    monkeypatch.setattr(db._writer.dialect, "do_ping", counted)
    try:
        first = _writer_pid(db)
        assert [_writer_pid(db) for _ in range(5)] == [first] * 5
        assert pings == []
        monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)
        assert _writer_pid(db) == first
        assert len(pings) == 1
    finally:
        db.dispose()


def test_a_writers_connection_lost_in_the_pool_is_replaced(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server process of the writer's pooled connection ends: after the idle time the
    ping finds it dead and the write goes through on a new connection; sooner, the write
    fails before commit (committed False) and retry_uncommitted's next run goes through.
    (The idle limit set per step, as above: none, then one no write here reaches.)"""
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    db = Database(pg_url)
    try:
        first = _writer_pid(db)
        _terminate(db, first)
        second = _writer_pid(db)
        assert second != first
        monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 3600.0)
        _terminate(db, second)
        with pytest.raises(DatabaseUnavailableError) as caught:
            _writer_pid(db)
        assert caught.value.committed is False
        third = retry_uncommitted(_writer_pid, db)
        assert third not in (first, second)
    finally:
        db.dispose()
