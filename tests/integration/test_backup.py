"""`lapor-node backup create|verify|restore`, as an operator runs them on a node that
serves: the database deleted and restored from the latest backup, an older backup
refused by the signing fence, a damaged backup caught."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from node.services import audit, backup, checkpoints, complaints, fence
from node.store import tree
from tests.conftest import NodeFactory
from tests.support.cli import run_cli
from tests.support.databases import fresh_database
from tests.support.factories import DRAFT
from tests.support.nodes import TestNode, free_port, make_node


def _grow(node: TestNode, count: int) -> int:
    """Submit `count` complaints and sign a checkpoint over them: the signed size."""
    for _ in range(count):
        complaints.submit(node.ctx(), DRAFT)
    signed, _ = checkpoints.sign(node.ctx())
    return signed.size


def _backup(node: TestNode, out: Path) -> dict[str, object]:
    done = node.cli("backup", "create", "--out", str(out), "--json")
    manifest: dict[str, object] = json.loads(done.stdout)
    return manifest


def _lapor(*args: str) -> subprocess.CompletedProcess[str]:
    """A command that acts on no node (no --config), as an auditor of a backup runs it (in
    this process: tests/support/cli.py)."""
    return run_cli(args)


def lose_database(node: TestNode, db_kind: str, empty_url: str) -> None:
    """The database is gone: the SQLite file deleted, or node.yaml pointed at a new,
    empty PostgreSQL database (the old server lost)."""
    node.close()
    if db_kind == "sqlite":
        path = Path(node.database_url.removeprefix("sqlite:///"))
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            p.unlink(missing_ok=True)
        return
    config = node.config.read_text()
    assert node.database_url in config
    node.config.write_text(config.replace(node.database_url, empty_url))
    node.database_url = empty_url


def test_a_deleted_database_comes_back_from_the_latest_backup(
    nodes: NodeFactory, db_kind: str, tmp_path: Path
) -> None:
    """Backed up while serving; the database deleted; restored; the node serves again on
    the same ledger, and the backup's manifest says what the ledger was."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    size = _grow(node, 3)
    node.start()
    try:
        manifest = _backup(node, tmp_path / "backup")
    finally:
        node.stop()
    head = audit.head(node.ctx())
    assert manifest["ledger"] == {"size": head.ledger_size, "root": _root(node, head.ledger_size)}
    assert manifest["fence"] == {"size": size}
    assert stat.S_IMODE((tmp_path / "backup").stat().st_mode) == 0o700
    for path in (tmp_path / "backup").rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    verified = _lapor("backup", "verify", str(tmp_path / "backup"), "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["ledger"] == manifest["ledger"]

    with fresh_database(db_kind, tmp_path) as empty:
        lose_database(node, db_kind, empty)
        node.cli("backup", "restore", str(tmp_path / "backup"))
        assert audit.head(node.ctx()).ledger_size == head.ledger_size
        node.start()  # the fence accepts the restored ledger
        node.stop()
        assert _grow(node, 1) > size
        node.close()


def _root(node: TestNode, size: int) -> str:
    with node.ctx().db.read() as session:
        return tree.root(session, size).hex()


def test_an_older_backup_is_refused_and_changes_nothing(
    nodes: NodeFactory, db_kind: str, tmp_path: Path
) -> None:
    """A backup from before the last signature would fork the node: refused with what to
    do, and the database (or the empty one) is left as it was."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    _grow(node, 1)
    _backup(node, tmp_path / "old")
    fenced = _grow(node, 2)
    with fresh_database(db_kind, tmp_path) as empty:
        lose_database(node, db_kind, empty)
        refused = node.cli("backup", "restore", str(tmp_path / "old"), check=False)
        assert refused.returncode != 0
        assert f"at least {fenced} entries" in refused.stderr
        assert "Traceback" not in refused.stderr
        if db_kind == "sqlite":
            assert not Path(node.database_url.removeprefix("sqlite:///")).exists()
        else:
            listed = node.cli("link", "list", check=False)
            assert "holds no lapor-node tables" in listed.stderr


def test_a_damaged_or_foreign_backup_is_refused(nodes: NodeFactory, tmp_path: Path) -> None:
    """A changed byte is named by `verify` and stops `restore`; another node's backup and a
    restore under a running serve are refused."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    other = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    _grow(node, 1)
    _backup(node, tmp_path / "b")
    _backup(other, tmp_path / "other")
    node.start()
    try:
        busy = node.cli("backup", "restore", str(tmp_path / "b"), check=False)
        assert busy.returncode != 0 and "already running" in busy.stderr
    finally:
        node.stop()
    foreign = node.cli("backup", "restore", str(tmp_path / "other"), check=False)
    assert foreign.returncode != 0 and "expected a backup of id-64" in foreign.stderr
    yaml = tmp_path / "b" / "node.yaml"
    yaml.write_text(yaml.read_text() + "# changed\n")
    damaged = _lapor("backup", "verify", str(tmp_path / "b"))
    assert damaged.returncode != 0 and "expected node.yaml to have SHA-256" in damaged.stderr
    refused = node.cli("backup", "restore", str(tmp_path / "b"), check=False)
    assert refused.returncode != 0 and "node.yaml" in refused.stderr


def test_an_older_backup_is_recovered_by_a_signed_discontinuity(
    nodes: NodeFactory, db_kind: str, tmp_path: Path
) -> None:
    """No backup holds what the node signed: `restore` refuses and names the recovery
    path; `restore --recover` ends the lost history with a signed discontinuity under a new
    key; the node serves and signs again, and its export verifies with the gap reported."""
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    _grow(node, 1)
    old = _backup(node, tmp_path / "old")
    fenced = _grow(node, 2)
    old_key = node.ctx().signing_key.public.raw
    old_fence = fence.fence_path(node.ctx().config).read_bytes()
    with fresh_database(db_kind, tmp_path) as empty:
        lose_database(node, db_kind, empty)
        refused = node.cli("backup", "restore", str(tmp_path / "old"), check=False)
        assert refused.returncode != 0 and "--recover --reason" in refused.stderr
        no_reason = node.cli("backup", "restore", str(tmp_path / "old"), "--recover", check=False)
        assert no_reason.returncode != 0 and "--reason" in no_reason.stderr
        done = node.cli(
            "backup",
            "restore",
            str(tmp_path / "old"),
            "--recover",
            "--reason",
            "disk lost",
            "--json",
        )
        stated = json.loads(done.stdout)["discontinuity"]
        restart = old["ledger"]["size"]  # type: ignore[index]
        assert stated["old_checkpoint"]["size"] == fenced
        assert stated["restart"]["size"] == stated["entry"] == restart
        assert bytes.fromhex(stated["new_signing_key"]) != old_key
        again = node.cli(
            "backup", "restore", str(tmp_path / "old"), "--recover", "--reason", "x", check=False
        )
        assert again.returncode != 0 and "Traceback" not in again.stderr
        node.start()  # the fence is the new generation's first checkpoint
        node.stop()
        # A crash between the recovery's commit and the fence's replace: the next start
        # finishes it from the recorded statement.
        fence_file = fence.fence_path(node.ctx().config)
        new_fence = fence_file.read_bytes()
        fence_file.write_bytes(old_fence)
        node.start()
        node.stop()
        assert fence_file.read_bytes() == new_fence
        assert _grow(node, 1) > restart + 1
        node.close()
        export = tmp_path / "export.jsonl"
        node.cli("audit", "export", "--out", str(export))
        verified = _lapor("audit", "verify", str(export), "--json")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        report = json.loads(verified.stdout)
        assert report["discontinuities"] == [
            {
                "kind": "discontinuity",
                "entry": restart,
                "old_checkpoint": stated["old_checkpoint"],
                "restart": stated["restart"],
                "reason": "disk lost",
                "declared_at": report["discontinuities"][0]["declared_at"],
            }
        ]
        text = _lapor("audit", "verify", str(export))
        assert f"discontinuity at entry {restart}, explained" in text.stdout


@pytest.mark.postgres
@pytest.mark.parametrize("form", ["repeated", "comma"])
def test_a_backup_through_a_multi_host_url_dumps_the_writable_host(
    tmp_path: Path, form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """node.yaml names the database by a libpq multi-host URL whose first host is down (a
    Patroni cluster after a failover): `backup create` dumps the primary the node writes
    to, and the backup verifies. The host it runs on has no PostgreSQL of its own (libpq's
    default socket leads nowhere), so only the URL's hosts can be what pg_dump reached."""
    monkeypatch.setenv("PGHOST", str(tmp_path / "no-server-here"))
    with fresh_database("postgresql", tmp_path, migrated=True) as url:
        single = make_url(url)
        live_host, live_port = single.host, single.port or 5432
        dead = free_port()
        if form == "repeated":
            query = f"host=127.0.0.1:{dead}&host={live_host}:{live_port}"
        else:
            query = f"host=127.0.0.1,{live_host}&port={dead},{live_port}"
        multi = (
            f"postgresql+psycopg://{single.username}@/{single.database}?{query}"
            "&target_session_attrs=read-write&connect_timeout=3"
        )
        node = make_node(tmp_path, "id-64", "Provinsi Kalimantan Timur", multi)
        try:
            size = _grow(node, 2)
            manifest = _backup(node, tmp_path / "backup")
            assert manifest["fence"] == {"size": size}
            assert manifest["ledger"] == {"size": size, "root": _root(node, size)}
            verified = _lapor("backup", "verify", str(tmp_path / "backup"), "--json")
            assert verified.returncode == 0, verified.stderr
        finally:
            node.close()


def test_multi_host_urls_become_libpq_lists() -> None:
    """Each spelling of a multi-host URL gives the same PGHOST and PGPORT lists, and the
    query's libpq settings go along; a plain URL gives its one host."""
    env = backup._libpq_env(
        "postgresql+psycopg://u@/d?host=db1:5432&host=[::1]:5433&host=db3"
        "&target_session_attrs=read-write&sslmode=require"
    )
    assert (env["PGHOST"], env["PGPORT"]) == ("db1,::1,db3", "5432,5433,5432")
    assert env["PGTARGETSESSIONATTRS"] == "read-write" and env["PGSSLMODE"] == "require"
    env = backup._libpq_env("postgresql+psycopg://u@/d?host=db1,db2&port=5432,6432")
    assert (env["PGHOST"], env["PGPORT"]) == ("db1,db2", "5432,6432")
    env = backup._libpq_env("postgresql+psycopg://u:secret@db9:6000/d")
    assert (env["PGHOST"], env["PGPORT"], env["PGPASSWORD"]) == ("db9", "6000", "secret")
