"""The ledger served as C2SP tlog-tiles (node.transparency.http) and written as static
tiles (`audit export --tiles`), from a real node's database on both databases; and the
offline proofs (`audit proof --format tlog-proof`, `verify-proof`, `consistency`)."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from werkzeug.test import Client, TestResponse

from node.cli.main import cli
from node.ledger.merkle import leaf_hash, root_from_leaves
from node.ledger.note import open_checkpoint, parse_vkey
from node.services import audit, checkpoints, complaints
from node.transparency.http import FULL_TILE_CACHE, PARTIAL_TILE_CACHE, TransparencyApp
from node.transparency.tiles import Tile, split_bundle, tiles_for_size
from tests.conftest import NodeFactory
from tests.support.factories import DRAFT
from tests.support.nodes import TestNode

REPORTER = {
    "reporter_name": "Siti Aminah Rahmawati",
    "reporter_contact": "081355501234",
    "reporter_id_number": "6402011203850001",
}
SIZE = 300
"""More than one full tile: a full level-0 tile, a partial one, a partial level-1 tile."""


@pytest.fixture
def node(nodes: NodeFactory) -> TestNode:
    node = nodes("id-64", "Provinsi Kalimantan Timur")
    drafts = [dataclasses.replace(DRAFT, title=f"Jalan rusak {n}", **REPORTER) for n in range(SIZE)]
    complaints.submit_many(node.ctx(), drafts)
    checkpoints.sign(node.ctx())
    return node


def _get(client: Client, path: str, **headers: str) -> TestResponse:
    return client.get(path, headers=headers)


def _body(response: TestResponse) -> bytes:
    data = response.get_data()
    return gzip.decompress(data) if response.headers.get("Content-Encoding") == "gzip" else data


def test_every_tile_and_bundle_proves_the_signed_checkpoint(node: TestNode) -> None:
    """The checkpoint verifies under the node's key; every tile the spec lists for its size
    is served with the spec's headers; the level-0 tiles are the bundles' leaf hashes and
    fold to the signed root; the level-1 tile holds the full level-0 tile's root."""
    ctx = node.ctx()
    client = Client(TransparencyApp(ctx))
    response = _get(client, "/checkpoint")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert int(response.headers["Cache-Control"].split("max-age=")[1]) <= 10
    cp = open_checkpoint(response.get_data(), parse_vkey(checkpoints.verifier_key(ctx)))
    assert cp.size == SIZE
    served: dict[Tile, bytes] = {}
    for tile in tiles_for_size(cp.size, bundles=True):
        r = _get(client, "/" + tile.path(), **{"Accept-Encoding": "gzip"})
        assert r.status_code == 200, tile.path()
        assert r.headers["Content-Type"] == "application/octet-stream"
        cache = PARTIAL_TILE_CACHE if tile.is_partial else FULL_TILE_CACHE
        assert r.headers["Cache-Control"] == cache
        served[tile] = _body(r)
    assert set(served) == {
        Tile(0, 0),
        Tile(0, 1, 44),
        Tile(None, 0),
        Tile(None, 1, 44),
        Tile(1, 0, 1),
    }
    entries = split_bundle(served[Tile(None, 0)]) + split_bundle(served[Tile(None, 1, 44)])
    leaves = served[Tile(0, 0)] + served[Tile(0, 1, 44)]
    assert leaves == b"".join(leaf_hash(e) for e in entries)
    hashes = [leaves[i : i + 32] for i in range(0, len(leaves), 32)]
    assert root_from_leaves(hashes) == cp.root
    assert served[Tile(1, 0, 1)] == root_from_leaves(hashes[:256])


def test_the_tiles_hold_no_personal_data(node: TestNode) -> None:
    """No name, phone or NIK planted in the complaints is in any tile, bundle or the
    checkpoint (the ledger holds commitments only)."""
    client = Client(TransparencyApp(node.ctx()))
    bodies = [_get(client, "/checkpoint").get_data()]
    for tile in tiles_for_size(SIZE, bundles=True):
        bodies.append(_body(_get(client, "/" + tile.path(), **{"Accept-Encoding": "gzip"})))
    assert sum(len(b) for b in bodies) > SIZE * 32
    for value in REPORTER.values():
        for body in bodies:
            assert value.encode() not in body
            assert value.split()[0].encode() not in body


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param("/tile/0/002", 404, id="a full tile beyond the checkpoint"),
        pytest.param("/tile/0/001", 404, id="the full tile of a partial one"),
        pytest.param("/tile/0/001.p/45", 404, id="a partial wider than the checkpoint"),
        pytest.param("/tile/0/001.p/43", 200, id="a narrower partial (an older size)"),
        pytest.param("/tile/entries/001.p/45", 404, id="a bundle beyond the checkpoint"),
        pytest.param("/tile/2/000.p/1", 404, id="a level the tree does not reach"),
        pytest.param("/tile/0/1", 404, id="not the spec's spelling"),
        pytest.param("/", 404, id="the root"),
        pytest.param("/checkpoint/", 404, id="a trailing slash"),
    ],
)
def test_what_the_checkpoint_does_not_hold_is_not_found(
    node: TestNode, path: str, status: int
) -> None:
    """Only tiles whose hashes are all within the latest checkpoint are served."""
    response = _get(Client(TransparencyApp(node.ctx())), path)
    assert response.status_code == status
    if status == 404:
        assert response.headers["Cache-Control"] == "no-store"


def test_it_is_read_only_and_plain_without_gzip(node: TestNode) -> None:
    """POST is refused (405), HEAD answers headers alone; a bundle is not gzipped for a
    client that does not ask."""
    client = Client(TransparencyApp(node.ctx()))
    assert client.post("/checkpoint").status_code == 405
    head = client.head("/tile/0/000")
    assert (head.status_code, head.get_data()) == (200, b"")
    assert head.headers["Cache-Control"] == FULL_TILE_CACHE
    r = _get(client, "/tile/entries/000")
    assert "Content-Encoding" not in r.headers
    assert len(split_bundle(r.get_data())) == 256


def test_export_tiles_writes_what_is_served(node: TestNode, tmp_path: Path) -> None:
    """`audit export --tiles DIR` writes the served bytes at the spec's paths, checkpoint
    included; run again, it keeps the full tiles already there."""
    out = tmp_path / "tiles"
    result = node.cli("audit", "export", "--tiles", str(out), "--json")
    assert json.loads(result.stdout) == {"dir": str(out), "size": SIZE, "written": 6, "kept": 0}
    client = Client(TransparencyApp(node.ctx()))
    for tile in tiles_for_size(SIZE, bundles=True):
        assert (out / tile.path()).read_bytes() == _body(_get(client, "/" + tile.path()))
    assert (out / "checkpoint").read_bytes() == _get(client, "/checkpoint").get_data()
    again = json.loads(node.cli("audit", "export", "--tiles", str(out), "--json").stdout)
    assert (again["written"], again["kept"]) == (4, 2)
    assert not list(out.rglob("*.partial"))


def test_a_tlog_proof_verifies_offline_and_a_changed_one_does_not(
    node: TestNode, tmp_path: Path
) -> None:
    """`audit proof --format tlog-proof` writes the spec's text; `audit verify-proof` accepts
    it under the node's vkey and refuses it once one path hash is changed."""
    text = node.cli("audit", "proof", "--index", "257", "--format", "tlog-proof").stdout
    assert text.startswith("c2sp.org/tlog-proof@v1\nextra ")
    assert "\nindex 257\n" in text
    proof = tmp_path / "257.tlog-proof"
    proof.write_text(text, encoding="utf-8")
    vkey = checkpoints.verifier_key(node.ctx())
    verify = ["audit", "verify-proof", str(proof), "--vkey", vkey]
    ok = CliRunner().invoke(cli, [*verify, "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["index"] == 257
    assert json.loads(ok.stdout)["tree_size"] == SIZE
    lines = text.split("\n")
    lines[3] = "A" * 43 + "="
    proof.write_text("\n".join(lines), encoding="utf-8")
    bad = CliRunner().invoke(cli, verify)
    assert bad.exit_code == 1
    assert "to lead to root" in bad.stderr


def test_consistency_from_the_node_and_from_an_export_agree(node: TestNode, tmp_path: Path) -> None:
    """`audit consistency` prints the same checked proof from the node and offline from its
    export, with the signed checkpoint of the newer size."""
    complaints.submit(node.ctx(), DRAFT)
    checkpoints.sign(node.ctx())
    export = tmp_path / "export.jsonl"
    node.cli("audit", "export", "--out", str(export))
    live = json.loads(node.cli("audit", "consistency", "--from", "100", "--json").stdout)
    offline = json.loads(
        node.cli("audit", "consistency", "--from", "100", "--export", str(export), "--json").stdout
    )
    assert live == offline
    assert live["second_size"] == SIZE + 1
    assert live["second_checkpoint"] is not None and live["first_checkpoint"] is None
    assert len(live["proof"]) > 0
    direct = audit.consistency(node.ctx(), 100, SIZE + 1)
    assert live["proof"] == [base64.b64encode(h).decode() for h in direct.proof]
