"""Reaching a PostgreSQL primary among several hosts (a libpq multi-host URL), and running a
write again only when it surely did not commit (node.store.db.retry_uncommitted)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from node.store.db import Database, DatabaseUnavailableError, retry_uncommitted
from tests.support.databases import fresh_database
from tests.support.nodes import free_port


@pytest.fixture
def pg_url(tmp_path: object) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path, migrated=True) as url:  # type: ignore[arg-type]
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
