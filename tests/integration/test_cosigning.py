"""C2SP witnessing between two real nodes over real HTTP: the province's log submits its
checkpoints to the national node's tlog-witness endpoint (served beside its tiles, on the
transparency listener's app), the witness cosigns consistent extensions only, and an
auditor's witness policy holds exactly when its quorum cosigned: on an export, on the
served `checkpoint`, and on an offline tlog-proof."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tlog_scales.signing import Vkey
from tlog_scales.tlog import Checkpoint as TheirCheckpoint
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.test import Client

from node.cli.main import cli
from node.complaints import ComplaintDraft
from node.errors import SignatureError
from node.ledger import witness_policy
from node.ledger.checkpoint import Checkpoint
from node.ledger.cosignature import CosignerKey, cosign
from node.ledger.note import sign_checkpoint
from node.services import checkpoints, complaints, cosigning
from node.services.context import NodeContext
from node.store import tree, witnessed
from node.transparency.http import TransparencyApp
from tests.conftest import NodeFactory
from tests.support.nodes import TestNode, free_port, link
from tests.support.waits import bound, wait_until


def _draft(n: int) -> ComplaintDraft:
    return ComplaintDraft(
        title=f"Lampu jalan padam {n}",
        description="Lampu jalan di depan pasar padam sejak dua minggu.",
        classification="pengaduan",
        category="infrastruktur",
        region_code="64.02",
        channel="web",
        reporter_name="Budi Santoso",
        reporter_contact="+62 812 5555 0199",
    )


@dataclass
class Witnessing:
    national: TestNode  # the witness
    province_node: TestNode  # the log, configured to submit to the witness ...
    province: NodeContext  # ... and a context opened on that configuration
    url: str
    witness_key: CosignerKey

    def grow(self, n: int) -> int:
        """n complaints more in the province's ledger, then a signed checkpoint: its size."""
        for i in range(n):
            complaints.submit(self.province, _draft(i))
        signed, _ = checkpoints.sign(self.province)
        return signed.size

    def note_at(self, size: int) -> bytes:
        with self.province.db.read() as session:
            row = tree.checkpoint_of_size(session, size)
            assert row is not None
            return row.note

    def held(self) -> int:
        with self.national.ctx().db.read() as session:
            row = witnessed.held(session, checkpoints.origin(self.province))
            return 0 if row is None else row.size

    def policy(self, *lines: str) -> str:
        log = f"log {checkpoints.verifier_key(self.province)}\n"
        return log + f"witness nat {self.witness_key.vkey}\n" + "".join(f"{x}\n" for x in lines)


SUBMIT_INTERVAL = 1


def _post(url: str, body: bytes) -> tuple[int, str, bytes]:
    """POST an add-checkpoint body with the log side's own HTTP client."""
    return cosigning.post(url + "/add-checkpoint", body, 10)


def _get_status(url: str) -> int:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/add-checkpoint")
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.fixture
def setup(nodes: NodeFactory) -> Iterator[Witnessing]:
    national = nodes("id", "Kementerian PANRB")
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    link(national, province)
    port = free_port()
    server: BaseWSGIServer = make_server(
        "127.0.0.1", port, TransparencyApp(national.ctx()), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    key = cosigning.cosigner_key(national.ctx())
    with province.config.open("a") as f:
        f.write(
            f"\nwitness:\n  submit_interval_seconds: {SUBMIT_INTERVAL}\n  submit_to:\n"
            f'    - {{name: national, vkey: "{key.vkey}", url: "{url}"}}\n'
        )
    ctx = NodeContext.open(province.config)
    try:
        yield Witnessing(national, province, ctx, url, key)
    finally:
        ctx.close()
        server.shutdown()
        thread.join()


def test_log_submits_and_the_witness_cosigns_each_consistent_extension(
    setup: Witnessing,
) -> None:
    """The first checkpoint (old 0) and a grown one (with a consistency proof) are both
    cosigned; the cosignature is stored, verifies, and is served with the checkpoint."""
    first = setup.grow(2)
    [result] = cosigning.submit(setup.province)
    assert (result.status, result.cosigned, result.size) == (200, True, first)
    assert setup.held() == first
    second = setup.grow(3)
    [result] = cosigning.submit(setup.province)
    assert (result.status, result.cosigned, result.size) == (200, True, second)
    assert setup.held() == second
    with setup.province.db.read() as session:
        served = cosigning.cosigned_checkpoint(session)
    assert served is not None and served.startswith(setup.note_at(second))
    policy = witness_policy.parse(setup.policy("quorum nat"))
    assert witness_policy.check(served, policy).witnesses == ("nat",)
    # An independent C2SP implementation (tlog-scales) reads the served checkpoint and
    # verifies both the log's signature and the witness's cosignature on it.
    theirs = TheirCheckpoint.from_text(served.decode())
    assert (theirs.origin, theirs.size) == (checkpoints.origin(setup.province), second)
    theirs.verify(Vkey.from_string(checkpoints.verifier_key(setup.province)))
    theirs.verify(Vkey.from_string(setup.witness_key.vkey))


def test_policy_check_passes_with_the_quorum_and_fails_without(
    setup: Witnessing, tmp_path: Path
) -> None:
    """`audit verify --policy` on the log's export passes with the witness as a quorum of 1,
    and fails with a witness-quorum finding when an unknown witness is required too."""
    setup.grow(2)
    assert cosigning.submit(setup.province)[0].cosigned
    export = tmp_path / "id-64.jsonl"
    config = str(setup.province.config.path)
    runner = CliRunner()
    made = runner.invoke(cli, ["audit", "export", "--out", str(export), "--config", config])
    assert made.exit_code == 0, made.output
    stranger = CosignerKey.from_public_key(
        "ombudsman.go.id/w1", Ed25519PrivateKey.generate().public_key()
    )
    good = tmp_path / "good.policy"
    good.write_text(setup.policy("quorum nat"))
    bad = tmp_path / "bad.policy"
    bad.write_text(
        setup.policy(
            f"witness ombudsman {stranger.vkey}", "group both all nat ombudsman", "quorum both"
        )
    )
    passed = runner.invoke(cli, ["audit", "verify", str(export), "--policy", str(good)])
    assert passed.exit_code == 0, passed.output
    assert "cosigned by nat" in passed.output
    failed = runner.invoke(cli, ["audit", "verify", str(export), "--policy", str(bad), "--json"])
    assert failed.exit_code == 1
    assert '"kind": "witness-quorum"' in failed.output
    assert "['nat']" in failed.output


def test_the_witness_refuses_rollback_fork_and_strangers(setup: Witnessing) -> None:
    """Over HTTP, each refusal has the status tlog-witness fixes, and none moves the head."""
    first = setup.grow(2)
    assert cosigning.submit(setup.province)[0].cosigned
    second = setup.grow(2)
    assert cosigning.submit(setup.province)[0].cosigned
    origin = checkpoints.origin(setup.province)
    key = setup.province.signing_key.ed25519  # to forge what only the log could sign

    # A rollback: the older checkpoint, from a stale old size: 409 with the size held.
    stale = cosigning.submit_body(first, [], setup.note_at(first))
    assert _post(setup.url, stale) == (409, "text/x.tlog.size", f"{second}\n".encode())
    # ... or claiming the held size, which is beyond the checkpoint's: 400.
    assert _post(setup.url, cosigning.submit_body(second, [], setup.note_at(first)))[0] == 400
    # A fork: another root at the held size, signed by the log's own key: 409.
    fork = sign_checkpoint(Checkpoint(origin, second, bytes(32)), origin, key)
    assert _post(setup.url, cosigning.submit_body(second, [], fork))[0] == 409
    # A larger checkpoint whose proof does not join it to the held one: 422.
    grown = sign_checkpoint(Checkpoint(origin, second + 5, bytes(32)), origin, key)
    assert _post(setup.url, cosigning.submit_body(second, [bytes(32)] * 3, grown))[0] == 422
    # An origin the witness does not witness: 404; the right origin by another key: 403.
    other = Ed25519PrivateKey.generate()
    unknown = sign_checkpoint(Checkpoint("example.org/log", 3, bytes(32)), "example.org/log", other)
    assert _post(setup.url, cosigning.submit_body(0, [], unknown))[0] == 404
    forged = sign_checkpoint(Checkpoint(origin, second + 1, bytes(32)), origin, other)
    assert _post(setup.url, cosigning.submit_body(second, [], forged))[0] == 403
    # Malformed bodies: 400; the wrong method: 405.
    assert _post(setup.url, b"old 01\n\n" + setup.note_at(first))[0] == 400
    assert _post(setup.url, b"old 0\nnot-base64\n\n" + setup.note_at(first))[0] == 400
    assert _get_status(setup.url) == 405
    assert setup.held() == second


def test_a_witness_that_lost_track_is_caught_up_from_the_size_it_names(
    setup: Witnessing,
) -> None:
    """When the witness holds a size the log has no cosignature for (its 409 says which),
    the log retries once with the proof from that size and is cosigned."""
    first = setup.grow(2)
    # The witness learns of `first` from someone else (a monitor relaying the checkpoint).
    assert _post(setup.url, cosigning.submit_body(0, [], setup.note_at(first)))[0] == 200
    second = setup.grow(2)
    [result] = cosigning.submit(setup.province)
    assert (result.status, result.cosigned, result.size) == (200, True, second)


def test_a_cosignature_that_does_not_verify_is_not_stored(setup: Witnessing) -> None:
    """A witness answering with a line by another key is refused by the log."""
    size = setup.grow(1)
    impostor = Ed25519PrivateKey.generate()

    def poster(url: str, body: bytes, timeout: float) -> tuple[int, str, bytes]:
        text = setup.note_at(size).split(b"\n\n")[0] + b"\n"
        line = cosign(text, setup.witness_key.name, impostor, 1_796_000_000).line()
        return 200, "text/plain", line.encode()

    [result] = cosigning.submit(setup.province, poster)
    assert not result.cosigned and "SignatureError" in result.detail
    with setup.province.db.read() as session:
        assert witnessed.cosignature_lines(session, size) == []
    with setup.province.db.read() as session:
        served = cosigning.cosigned_checkpoint(session)
    assert served is not None
    with pytest.raises(SignatureError, match="no policy witness"):
        witness_policy.check(served, witness_policy.parse(setup.policy("quorum nat")))


def test_serve_submits_its_checkpoints_to_the_witnesses_by_itself(setup: Witnessing) -> None:
    """A serving node's periodic job offers its latest checkpoint to the configured witness
    and keeps the cosignature, with nobody calling submit."""
    size = setup.grow(2)
    province = setup.province_node
    province.start()
    try:

        def cosigned() -> bool:
            with setup.province.db.read() as session:
                return bool(witnessed.cosignature_lines(session, size))

        wait_until(cosigned, bound(SUBMIT_INTERVAL), what="serve to store a cosignature")
    finally:
        province.stop()
    assert setup.held() == size


def test_the_served_checkpoint_and_a_tlog_proof_carry_the_cosignature(
    setup: Witnessing, tmp_path: Path
) -> None:
    """Once cosigned, the province's own tiles endpoint serves its checkpoint with the
    witness's line, and `audit verify-proof --policy` holds on a tlog-proof of one entry;
    a policy that also requires an unknown witness fails it."""
    size = setup.grow(3)
    assert cosigning.submit(setup.province)[0].cosigned
    served = Client(TransparencyApp(setup.province)).get("/checkpoint")
    assert served.status_code == 200
    policy = witness_policy.parse(setup.policy("quorum nat"))
    assert witness_policy.check(served.data, policy).checkpoint.size == size
    config = str(setup.province_node.config)
    runner = CliRunner()
    proof = tmp_path / "1.tlog-proof"
    made = runner.invoke(
        cli, ["audit", "proof", "--index", "1", "--format", "tlog-proof", "--config", config]
    )
    assert made.exit_code == 0, made.output
    proof.write_text(made.output)
    good = tmp_path / "good.policy"
    good.write_text(setup.policy("quorum nat"))
    vkey = checkpoints.verifier_key(setup.province)
    args = ["audit", "verify-proof", str(proof), "--vkey", vkey, "--json", "--policy"]
    passed = runner.invoke(cli, [*args, str(good)])
    assert passed.exit_code == 0, passed.output
    assert '"cosigned_by": [' in passed.output and '"nat"' in passed.output
    stranger = CosignerKey.from_public_key(
        "ombudsman.go.id/w1", Ed25519PrivateKey.generate().public_key()
    )
    bad = tmp_path / "bad.policy"
    bad.write_text(
        setup.policy(
            f"witness ombudsman {stranger.vkey}", "group both all nat ombudsman", "quorum both"
        )
    )
    failed = runner.invoke(cli, [*args, str(bad)])
    assert failed.exit_code == 1, failed.output
