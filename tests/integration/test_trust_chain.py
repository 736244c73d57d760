"""`audit verify FILE --trust VKEY` on a real tree: national -> province -> regency linked
with join tokens (in-process), exported and verified from the national node's key alone;
the wrong key, a tampered agreement, a link made by hand and key rotations."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from node._proto.lapor.v1 import enrollment_pb2, ledger_pb2, trust_pb2
from node.cli.main import cli
from node.complaints import ComplaintDraft
from node.crypto.linking import AddressPair
from node.crypto.signing import SigningKey
from node.ledger.audit import AuditFailure, AuditReport, verify_export, vkey_for
from node.services import (
    audit,
    checkpoints,
    complaints,
    invites,
    join_answers,
    joining,
    links,
    rotation,
)
from node.services._ledger import record
from node.services.context import NodeContext
from tests.conftest import NodeFactory
from tests.support.nodes import TestNode, hand_over, link
from tests.unit.ledger.test_trust import Keys, agreement

TTL = dt.timedelta(hours=1)
ADDRESSES = [AddressPair("127.0.0.1:7464", "127.0.0.1:7465")]
DRAFT = ComplaintDraft(
    title="Jalan rusak",
    description="Lubang besar",
    classification="pengaduan",
    category="infrastruktur",
    region_code="64.02",
    channel="walk_in",
)


def _join(parent: TestNode, child: TestNode) -> None:
    """The whole join ceremony between two nodes, in-process (the network left out)."""
    p_ctx, c_ctx = parent.ctx(), child.ctx()
    token = invites.invite(p_ctx, child.node_id, child.name, TTL, "auto", ADDRESSES)
    request = joining.join_request(c_ctx, token, p_ctx.config.tls_cert.read_bytes())
    response = join_answers.answer_join(p_ctx, request)
    assert response.status == enrollment_pb2.JOIN_STATUS_ACCEPTED, response.message
    acceptance = joining.accept(c_ctx, token, response)
    join_answers.answer_confirm(
        p_ctx,
        enrollment_pb2.ConfirmRequest(
            invite_id=token.invite_id,
            secret=token.secret,
            agreement=acceptance.agreement.agreement,
            child_signature=acceptance.agreement.child_signature,
        ),
    )
    joining.record_join(c_ctx, token, acceptance, ADDRESSES[0].federation)


def _refer(parent: TestNode, child: TestNode) -> None:
    """A referral down and its receipt back up."""
    ctx = parent.ctx()
    complaints.refer(ctx, complaints.submit(ctx, DRAFT), child.node_id)
    assert hand_over(parent, child).applied == 1
    hand_over(child, parent)


def _export(node: TestNode) -> list[str]:
    ctx = node.ctx()
    checkpoints.sign(ctx)
    out = io.StringIO()
    audit.export(ctx, out)
    return out.getvalue().splitlines(keepends=True)


def _national_vkey(ctx: NodeContext) -> str:
    return checkpoints.verifier_key(ctx)


def _failure(lines: list[str], trust: str) -> AuditFailure:
    with pytest.raises(AuditFailure) as raised:
        verify_export(lines, trust=trust)
    return raised.value


def _header_chain(lines: list[str]) -> trust_pb2.TrustChain:
    return trust_pb2.TrustChain.FromString(base64.b64decode(json.loads(lines[0])["trust_chain"]))


def _with_chain(lines: list[str], chain: trust_pb2.TrustChain) -> list[str]:
    header = json.loads(lines[0])
    header["trust_chain"] = base64.b64encode(chain.SerializeToString()).decode()
    return [json.dumps(header) + "\n", *lines[1:]]


@dataclass
class Tree:
    national: TestNode
    province: TestNode
    regency: TestNode

    @property
    def trust(self) -> str:
        return _national_vkey(self.national.ctx())


@pytest.fixture
def tree(nodes: NodeFactory) -> Tree:
    """national -> province -> regency, joined with tokens; one referral crossed."""
    made = Tree(
        nodes("id", "Nasional"),
        nodes("id-64", "Provinsi Kalimantan Timur"),
        nodes("id-64-02", "Kabupaten Kutai Kartanegara"),
    )
    _join(made.national, made.province)
    _join(made.province, made.regency)
    _refer(made.province, made.regency)
    return made


def test_exports_verify_from_the_national_key_alone(tree: Tree) -> None:
    """The regency's export reaches its key through national -> province -> regency; the
    province's reaches the regency's receipts through its own agreement with it."""
    report = verify_export(_export(tree.regency), trust=tree.trust)
    assert (report.trusted_by, report.trust_path) == ("id", ("id", "id-64", "id-64-02"))
    assert len(_header_chain(_export(tree.regency)).steps) == 2
    province = verify_export(_export(tree.province), trust=tree.trust)
    assert province.trust_path == ("id", "id-64")
    assert verify_export(_export(tree.national), trust=tree.trust).trust_path == ("id",)


def test_the_wrong_national_key_fails(tree: Tree) -> None:
    """A key under the national node's name that is not its key reaches nothing: the first
    step of the chain is named."""
    wrong = vkey_for("id", SigningKey.generate().public.raw)
    found = _failure(_export(tree.regency), wrong).finding
    assert found.kind == "trust-chain" and found.index is None
    assert "chain step 0" in found.detail


def test_a_tampered_agreement_fails_naming_its_step(tree: Tree) -> None:
    """The province -> regency agreement in the exported chain, altered: its signatures no
    longer verify, and the step is named."""
    lines = _export(tree.regency)
    chain = _header_chain(lines)
    agreement = trust_pb2.LinkAgreement.FromString(chain.steps[1].agreement.agreement)
    agreement.child.signing_key = SigningKey.generate().public.raw
    chain.steps[1].agreement.agreement = agreement.SerializeToString()
    found = _failure(_with_chain(lines, chain), tree.trust).finding
    assert found.kind == "trust-chain"
    assert "chain step 1 (agreement)" in found.detail and "not signed by its parent" in found.detail


def test_a_forged_agreement_in_the_ledger_fails_naming_the_entry(tree: Tree) -> None:
    """The regency records an agreement with a made-up key for its province, signed by both
    keys it names, and checkpoints it honestly: alone the export holds; from the national
    key, that entry is named, with the key the chain does not reach."""
    ctx = tree.regency.ctx()
    fake_province = Keys("id-64")
    regency = Keys("id-64-02")
    regency.signing, regency.cert = [ctx.signing_key], ctx.config.tls_cert.read_bytes()
    forged = agreement(fake_province, regency).agreement
    with ctx.db.write() as session:
        index = record(
            session,
            ctx,
            ledger_pb2.LedgerEntry(link_agreed=ledger_pb2.LinkAgreed(agreement=forged)),
        )
    lines = _export(tree.regency)
    verify_export(lines)
    found = _failure(lines, tree.trust).finding
    assert (found.kind, found.index) == ("untrusted-key", index)
    assert found.detail.startswith("link_agreed: id-64's key")
    assert "not reached by the chain of trust from id" in found.detail


def test_a_chain_that_stops_short_fails(tree: Tree) -> None:
    """The regency's export carrying only the national -> province step does not end at it."""
    lines = _export(tree.regency)
    chain = _header_chain(lines)
    del chain.steps[1]
    found = _failure(_with_chain(lines, chain), tree.trust).finding
    assert found.kind == "trust-chain" and "does not end at id-64-02" in found.detail


def test_a_child_linked_by_hand_fails_naming_the_entry(tree: Tree, nodes: NodeFactory) -> None:
    """A regency the province linked with `link add` (no agreement): its receipt's key is
    reached by nothing, and the entry that holds it is named; without --trust all holds."""
    kutim = nodes("id-64-08", "Kabupaten Kutai Timur")
    link(tree.province, kutim)
    _refer(tree.province, kutim)
    lines = _export(tree.province)
    verify_export(lines)
    found = _failure(lines, tree.trust).finding
    entries = [json.loads(line) for line in lines if '"type":"entry"' in line]
    assert found.kind == "untrusted-key" and found.index == len(entries) - 1
    assert found.detail.startswith("receipt_received: id-64-08's key")
    assert "made by hand" in found.detail


def test_signatures_after_a_revocation_fail(tree: Tree) -> None:
    """The regency leaves its province: the checkpoint covering that entry holds, the next
    one (its key reaches nothing any more) is named. The province revoking a child keeps
    its own export good."""
    links.revoke(tree.province.ctx(), "id-64-02", "merged")
    verify_export(_export(tree.province), trust=tree.trust)
    regency = tree.regency.ctx()
    left = links.revoke(regency, "id-64", "left")
    covering = _export(tree.regency)
    verify_export(covering, trust=tree.trust)
    complaints.submit(regency, DRAFT)
    lines = _export(tree.regency)
    verify_export(lines)
    found = _failure(lines, tree.trust).finding
    assert (found.kind, found.checkpoint_size) == ("untrusted-key", left.ledger_index + 2)
    assert f"its link to id-64 was revoked by entry {left.ledger_index}" in found.detail


def test_rotated_keys_are_followed(tree: Tree, nodes: NodeFactory) -> None:
    """The regency and then the province rotate their keys; envelopes cross with the new
    keys; every export verifies from the national key, and a regency that joins the
    province after its rotation receives a chain that reaches it."""
    rotation.rotate(tree.regency.ctx(), dt.timedelta(0))
    hand_over(tree.regency, tree.province)  # the rotation envelope: the province re-pins
    _refer(tree.province, tree.regency)
    rotation.rotate(tree.province.ctx(), dt.timedelta(0))
    hand_over(tree.province, tree.regency)
    hand_over(tree.province, tree.national)
    _refer(tree.province, tree.regency)

    regency = _export(tree.regency)
    kinds = [s.WhichOneof("kind") for s in _header_chain(regency).steps]
    assert kinds == ["agreement", "agreement", "rotation", "rotation"]
    report: AuditReport = verify_export(regency, trust=tree.trust)
    assert report.current_vkey != report.vkey
    assert report.trust_path == ("id", "id-64", "id-64-02")
    verify_export(_export(tree.province), trust=tree.trust)

    kutim = nodes("id-64-08", "Kabupaten Kutai Timur")
    _join(tree.province, kutim)  # verify_chain follows the province's rotation
    assert verify_export(_export(kutim), trust=tree.trust).trust_path == ("id", "id-64", "id-64-08")


def test_the_cli_checks_the_chain(tree: Tree, tmp_path: Path) -> None:
    """`audit verify FILE --trust VKEY --json`: exit 0 with the path, exit 1 with the
    finding under another key, and a usage error for a malformed key."""
    path = tmp_path / "id-64-02.jsonl"
    path.write_text("".join(_export(tree.regency)), encoding="utf-8")
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify", str(path), "--trust", tree.trust, "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["trust_path"] == ["id", "id-64", "id-64-02"]
    wrong = vkey_for("id", SigningKey.generate().public.raw)
    failed = runner.invoke(cli, ["audit", "verify", str(path), "--trust", wrong, "--json"])
    assert failed.exit_code == 1
    assert json.loads(failed.output)["kind"] == "trust-chain"
    bad = runner.invoke(cli, ["audit", "verify", str(path), "--trust", "not-a-key"])
    assert bad.exit_code == 2 and "--trust" in bad.output
