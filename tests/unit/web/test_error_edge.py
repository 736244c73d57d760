"""The dashboard's error edge (node.web.app, invariant 3), in process over a real node's
SQLite database: a refusal is a 4xx page in words, and a damaged database (a table gone)
is a 500 page with no detail, logged once by type and frames, never by its text."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from werkzeug.test import Client

from node.services.context import NodeContext
from node.services.setup import init_node
from node.web.app import DashboardApp
from tests.support.nodes import free_port


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeContext]:
    directory = tmp_path / "node"
    url = f"sqlite:///{directory / 'node.db'}"
    init_node(directory, "id-64", "Prov", listen=f"127.0.0.1:{free_port()}", database_url=url)
    ctx = NodeContext.open(directory / "node.yaml")
    try:
        yield ctx
    finally:
        ctx.close()


def test_a_refusal_is_a_page_in_words(node: NodeContext) -> None:
    """A bad parameter is 400 in the page's language, logged as no failure."""
    with capture_logs() as logs:
        response = Client(DashboardApp(node)).get("/?year=abc&lang=en")
    assert response.status_code == 400
    assert "The year must be a number" in response.get_data(as_text=True)
    assert not [e for e in logs if e["log_level"] == "error"]


@pytest.mark.parametrize("path", ["/?lang=en", "/api/report"])
def test_a_damaged_database_is_a_500_with_no_detail_logged_once(
    node: NodeContext, path: str
) -> None:
    """The complaints table dropped behind the node's back: 500, the page says only to look
    at the log, and the log has one line naming the error's type and where, not its text."""
    client = Client(DashboardApp(node))
    assert client.get(path).status_code == 200
    with sqlite3.connect(node.config.database_url.removeprefix("sqlite:///")) as db:
        db.execute("DROP TABLE complaints")
    with capture_logs() as logs:
        response = client.get(path)
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "log" in body
    assert "complaints" not in body and "SELECT" not in body
    failed = [e for e in logs if e["event"] == "dashboard.failed"]
    assert len(failed) == 1, logs
    assert failed[0]["error_type"] == "OperationalError"
    assert failed[0]["frames"]
    assert "no such table" not in repr(logs) and "SELECT" not in repr(logs)
