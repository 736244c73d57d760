"""The join ceremony in-process (node.services.invites, node.crypto.linking): tokens,
the parent's answers to Join and Confirm, the child's checks, idempotent retries, every
refusal leaving both nodes as they were; revocation and `link list` (node.services.links)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import select

from node._proto.lapor.v1 import enrollment_pb2, ledger_pb2, trust_pb2
from node.clock import FixedClock
from node.complaints import ComplaintDraft
from node.crypto.chain import ChainError
from node.crypto.linking import (
    TOKEN_PREFIX,
    AddressPair,
    JoinToken,
    open_agreement,
    open_revocation,
    sign_join,
    verify_chain,
)
from node.crypto.signing import SigningKey
from node.crypto.tls import fingerprint, generate_tls_identity
from node.errors import (
    NodeError,
    NotFoundError,
    PermissionDeniedError,
    SignatureError,
    StateError,
    ValidationError,
)
from node.ledger.audit import verify_export
from node.services import audit, complaints, invites, join_answers, joining, links
from node.services.context import NodeContext
from node.store import link_state, queries
from node.store.models import Invite
from tests.conftest import NodeFactory
from tests.support.nodes import TestNode, hand_over, snapshot

NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
TTL = dt.timedelta(hours=48)
ADDRESSES = [AddressPair("127.0.0.1:7464", "127.0.0.1:7465")]


@dataclass
class Party:
    """A node in-process, with a clock the test moves."""

    node: TestNode
    ctx: NodeContext
    clock: FixedClock

    @property
    def cert(self) -> bytes:
        return self.ctx.config.tls_cert.read_bytes()


@pytest.fixture
def party(nodes: NodeFactory) -> Iterator[Callable[[str, str], Party]]:
    made: list[NodeContext] = []

    def make(node_id: str, name: str) -> Party:
        node = nodes(node_id, name)
        clock = FixedClock(NOW)
        ctx = NodeContext.open(node.config, clock=clock)
        made.append(ctx)
        return Party(node, ctx, clock)

    yield make
    for ctx in made:
        ctx.close()


def _invite(parent: Party, child: str = "id-64-02", approval: str = "auto") -> JoinToken:
    return invites.invite(
        parent.ctx, child, "Kabupaten Kutai Kartanegara", TTL, approval, ADDRESSES
    )


def _join(parent: Party, child: Party, token: JoinToken) -> enrollment_pb2.JoinResponse:
    """The child's Join, answered by the parent (the network left out)."""
    request = joining.join_request(child.ctx, token, parent.cert)
    return join_answers.answer_join(parent.ctx, request)


def _confirm(
    parent: Party, token: JoinToken, acceptance: joining.Acceptance
) -> enrollment_pb2.ConfirmResponse:
    return join_answers.answer_confirm(
        parent.ctx,
        enrollment_pb2.ConfirmRequest(
            invite_id=token.invite_id,
            secret=token.secret,
            agreement=acceptance.agreement.agreement,
            child_signature=acceptance.agreement.child_signature,
        ),
    )


def _link_up(parent: Party, child: Party, token: JoinToken) -> int:
    """The whole ceremony; returns the child's ledger index."""
    response = _join(parent, child, token)
    assert response.status == enrollment_pb2.JOIN_STATUS_ACCEPTED
    acceptance = joining.accept(child.ctx, token, response)
    _confirm(parent, token, acceptance)
    return joining.record_join(child.ctx, token, acceptance, token.addresses[0].federation)


def _entries(party: Party) -> list[ledger_pb2.LedgerEntry]:
    with party.ctx.db.read() as session:
        return [ledger_pb2.LedgerEntry.FromString(r.entry) for r in queries.iter_ledger(session)]


def _invites(party: Party) -> list[tuple[str, str, bytes | None, bytes | None]]:
    """Each invite's id, state, claiming key and agreement."""
    with party.ctx.db.read() as session:
        rows = session.execute(select(Invite).order_by(Invite.invite_id)).scalars()
        return [(r.invite_id, r.state, r.child_signing_key, r.agreement) for r in rows]


def _invite_state(party: Party, token: JoinToken) -> str:
    with party.ctx.db.read() as session:
        row = link_state.get_invite(session, token.invite_id)
        assert row is not None
        return row.state


# --- the token ----------------------------------------------------------------------------


def _token() -> JoinToken:
    return JoinToken(
        invite_id="0123456789abcdef0123456789abcdef",
        parent_id="id-64",  # type: ignore[arg-type]
        parent_name="Provinsi Kalimantan Timur",
        child_id="id-64-02",  # type: ignore[arg-type]
        child_name="Kabupaten Kutai Kartanegara",
        addresses=tuple(ADDRESSES),
        parent_tls_sha256=bytes(range(32)),
        expires_at=NOW + TTL,
        secret=b"s" * 32,
    )


def _fields(text: str) -> dict[str, object]:
    body = text.removeprefix(TOKEN_PREFIX)
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))  # type: ignore[no-any-return]


def _encode(fields: dict[str, object]) -> str:
    raw = json.dumps(fields, separators=(",", ":")).encode()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_token_round_trips_and_hides_its_secret() -> None:
    """decode(encode(t)) == t; one line, copy-pastable; repr never shows the secret."""
    token = _token()
    text = token.encode()
    assert JoinToken.decode(f"  {text}\n") == token
    assert text.startswith("lapor-join1.") and all(c.isalnum() or c in "._-" for c in text)
    assert repr(token.secret) not in repr(token)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("parent", "id-63"),
        ("parent_name", "Provinsi Lain"),
        ("child", "id-64-08"),
        ("child_name", "Kabupaten Lain"),
        ("addrs", [["10.9.9.9:7464", "10.9.9.9:7465"]]),
        ("tls_sha256", "ff" * 32),
        ("invite", "f" * 32),
        ("expires", 4_102_444_800),
        ("secret", base64.urlsafe_b64encode(b"t" * 32).decode().rstrip("=")),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 16 else None,
)
def test_altering_any_field_is_detected(field: str, value: object) -> None:
    """A token with any one field changed (and its check value left as it was) is refused."""
    fields = _fields(_token().encode())
    fields[field] = value
    with pytest.raises(ValidationError, match="altered or damaged"):
        JoinToken.decode(_encode(fields))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("lapor-join2.abc", "expected it to start with 'lapor-join1.'", id="prefix"),
        pytest.param("lapor-join1.!!!", "does not decode", id="not-base64"),
        pytest.param(_token().encode()[:-20], "damaged", id="truncated"),
        pytest.param(_encode({"v": 1}), "fields are wrong", id="missing-fields"),
        pytest.param(_encode({**_fields(_token().encode()), "v": 2}), "version 2", id="version"),
    ],
)
def test_damaged_tokens_are_refused_with_what_to_do(text: str, message: str) -> None:
    """Each malformed token is refused with a message that says what is wrong."""
    with pytest.raises(ValidationError, match=message) as raised:
        JoinToken.decode(text)
    assert "link invite" in str(raised.value) or "version" in message


# --- the ceremony ---------------------------------------------------------------------------


def test_auto_join_records_one_agreement_signed_by_both_on_each_side(
    party: Callable[[str, str], Party],
) -> None:
    """Join, accept, Confirm, record: both ledgers hold the same agreement with both
    signatures; each side pins the other; the invite is used."""
    parent = party("id-64", "Provinsi Kalimantan Timur")
    child = party("id-64-02", "Kabupaten Kutai Kartanegara")
    token = _invite(parent)
    index = _link_up(parent, child, token)

    (parent_entry,) = _entries(parent)
    (child_entry,) = _entries(child)
    assert index == 0
    assert parent_entry.link_agreed.agreement == child_entry.link_agreed.agreement
    agreement = open_agreement(child_entry.link_agreed.agreement)
    assert agreement.parent.node_id == "id-64" and agreement.child.node_id == "id-64-02"
    assert agreement.child.signing_key == child.ctx.signing_key.public.raw
    assert agreement.child.tls_cert_sha256 == fingerprint(child.cert)
    assert agreement.parent.tls_cert_sha256 == fingerprint(parent.cert)
    assert agreement.agreed_at.ToDatetime(tzinfo=dt.UTC) == NOW
    assert list(child_entry.link_agreed.parent_chain.steps) == []  # the province is linked by hand
    assert [(p.peer_id, p.role) for p in links.pins(parent.ctx)] == [("id-64-02", "child")]
    assert [(p.peer_id, p.role, p.address) for p in links.pins(child.ctx)] == [
        ("id-64", "parent", "127.0.0.1:7464")
    ]
    assert _invite_state(parent, token) == "used"


def test_retries_get_the_same_agreement_and_index(party: Callable[[str, str], Party]) -> None:
    """A lost answer is harmless: Join again gives the same bytes, Confirm again the same
    index, and after the parent recorded, a new join run finishes the child's side."""
    parent = party("id-64", "Provinsi Kalimantan Timur")
    child = party("id-64-02", "Kabupaten Kutai Kartanegara")
    token = _invite(parent)
    first = _join(parent, child, token)
    child.clock.advance(dt.timedelta(seconds=30))
    again = _join(parent, child, token)
    assert again.agreement == first.agreement and again.parent_signature == first.parent_signature
    acceptance = joining.accept(child.ctx, token, again)
    confirmed = _confirm(parent, token, acceptance)
    assert _confirm(parent, token, acceptance) == confirmed  # the answer was lost
    # The child never recorded: `link join` is run again with the same token.
    assert joining.check_token(child.ctx, token) is None
    rerun = _join(parent, child, token)
    assert rerun.confirmed and rerun.agreement == first.agreement
    acceptance = joining.accept(child.ctx, token, rerun)
    assert _confirm(parent, token, acceptance).ledger_index == confirmed.ledger_index
    joining.record_join(child.ctx, token, acceptance, "127.0.0.1:7464")
    assert len(_entries(parent)) == 1 and len(_entries(child)) == 1
    linked = joining.check_token(child.ctx, token)
    assert linked is not None and linked.peer_id == "id-64"


def test_manual_join_waits_for_approval(party: Callable[[str, str], Party]) -> None:
    """With --approve manual, Join answers PENDING (and writes no link) until the operator
    approves; then the same join is accepted."""
    parent = party("id-64", "Provinsi Kalimantan Timur")
    child = party("id-64-02", "Kabupaten Kutai Kartanegara")
    token = _invite(parent, approval="manual")
    with pytest.raises(NotFoundError, match="not used yet"):
        invites.approve(parent.ctx, "id-64-02")
    pending = _join(parent, child, token)
    assert pending.status == enrollment_pb2.JOIN_STATUS_PENDING
    assert "link approve id-64-02" in pending.message
    assert fingerprint(child.cert).hex()[:16] in pending.message
    assert _entries(parent) == [] and links.pins(parent.ctx) == []
    assert _join(parent, child, token).status == enrollment_pb2.JOIN_STATUS_PENDING
    approved = invites.approve(parent.ctx, "id-64-02")
    assert approved.tls_sha256 == fingerprint(child.cert)
    _link_up(parent, child, token)
    assert _invite_state(parent, token) == "used"


def test_rejected_join_is_told_and_leaves_nothing(party: Callable[[str, str], Party]) -> None:
    """`link reject` kills the token: the waiting join is answered REJECTED with the reason."""
    parent = party("id-64", "Provinsi Kalimantan Timur")
    child = party("id-64-02", "Kabupaten Kutai Kartanegara")
    token = _invite(parent, approval="manual")
    _join(parent, child, token)
    invites.reject(parent.ctx, "id-64-02", "not our regency")
    answer = _join(parent, child, token)
    assert answer.status == enrollment_pb2.JOIN_STATUS_REJECTED
    assert "not our regency" in answer.message
    with pytest.raises(NotFoundError):
        invites.approve(parent.ctx, "id-64-02")
    assert _entries(parent) == [] and links.pins(parent.ctx) == []


def test_chain_of_trust_reaches_the_grandchild(party: Callable[[str, str], Party]) -> None:
    """A regency joining a province that joined the national node receives the province's
    chain (national -> province) and verifies it; a chain that ends elsewhere is refused."""
    national = party("id", "Nasional")
    province = party("id-64", "Provinsi Kalimantan Timur")
    regency = party("id-64-02", "Kabupaten Kutai Kartanegara")
    to_province = invites.invite(national.ctx, "id-64", "Provinsi", TTL, "auto", ADDRESSES)
    _link_up(national, province, to_province)
    token = _invite(province)
    response = _join(province, regency, token)
    (step,) = response.parent_chain.steps
    assert open_agreement(step.agreement).child.node_id == "id-64"
    acceptance = joining.accept(regency.ctx, token, response)
    _confirm(province, token, acceptance)
    joining.record_join(regency.ctx, token, acceptance, "127.0.0.1:7464")
    (entry,) = _entries(regency)
    assert entry.link_agreed.parent_chain == response.parent_chain
    wrong = trust_pb2.NodeKeys(node_id="id-64", signing_key=bytes(32), tls_cert_sha256=bytes(32))
    with pytest.raises(ChainError, match="chain of trust ends at id-64"):
        verify_chain(response.parent_chain.steps, wrong)
    forged = trust_pb2.TrustChain()
    forged.CopyFrom(response.parent_chain)
    forged.steps[0].agreement.child_signature = bytes(64)
    with pytest.raises(ChainError, match="chain step 0") as raised:
        verify_chain(forged.steps, open_agreement(step.agreement).child)
    assert isinstance(raised.value.__cause__, SignatureError)


# --- checks made again where the state changes (decision 0037) ------------------------------


def test_a_second_join_run_recording_after_the_first_gets_its_entry(
    party: Callable[[str, str], Party],
) -> None:
    """The operator ran `link join` twice at once: both runs passed check_token before
    either recorded, both were accepted; the run that records second finds the link the
    first made, in its own transaction, and returns its entry: one agreement, no error."""
    parent = party("id-64", "Provinsi Kalimantan Timur")
    child = party("id-64-02", "Kabupaten Kutai Kartanegara")
    token = _invite(parent)
    assert joining.check_token(child.ctx, token) is None  # run 1 looks
    assert joining.check_token(child.ctx, token) is None  # run 2 looks
    response = _join(parent, child, token)
    acceptance = joining.accept(child.ctx, token, response)
    _confirm(parent, token, acceptance)
    first = joining.record_join(child.ctx, token, acceptance, "127.0.0.1:7464")
    second = joining.record_join(child.ctx, token, acceptance, "127.0.0.1:7464")
    assert second == first
    assert len(_entries(child)) == 1 and len(_entries(parent)) == 1
    # Another parent's token still finds this node's parent, under the same lock.
    other = party("id-65", "Provinsi Kalimantan Utara")
    foreign = _invite(other)
    with pytest.raises(StateError, match="already has a parent, id-64"):
        joining.record_join(child.ctx, foreign, acceptance, "127.0.0.1:7466")
    assert len(_entries(child)) == 1


def test_a_rejection_between_the_checks_and_the_answer_is_honoured(
    party: Callable[[str, str], Party],
) -> None:
    """check_join passed off the writer; the operator rejected the child before the answer
    was written: the answer, made in its own transaction, is REJECTED and nothing is
    recorded on the parent."""
    parent = party("id-64", "Provinsi Kalimantan Timur")
    child = party("id-64-02", "Kabupaten Kutai Kartanegara")
    token = _invite(parent)
    request = joining.join_request(child.ctx, token, parent.cert)
    opened = join_answers.check_join(parent.ctx, request)
    invites.reject(parent.ctx, "id-64-02", "not our regency")
    before = snapshot(parent.node)
    answer = join_answers.answer_join(parent.ctx, request, opened)
    assert answer.status == enrollment_pb2.JOIN_STATUS_REJECTED
    assert "not our regency" in answer.message
    assert snapshot(parent.node) == before
    assert _entries(parent) == [] and links.pins(parent.ctx) == []


def test_a_child_pinned_by_hand_meanwhile_cannot_confirm_a_second_link(
    party: Callable[[str, str], Party],
) -> None:
    """The join was accepted; before the child confirmed, the parent's operator pinned the
    same child by hand (`link add`): Confirm, checking in its transaction, refuses to
    record a second link and leaves the hand-made one alone."""
    parent = party("id-64", "Provinsi Kalimantan Timur")
    child = party("id-64-02", "Kabupaten Kutai Kartanegara")
    token = _invite(parent)
    acceptance = joining.accept(child.ctx, token, _join(parent, child, token))
    links.add_link(parent.ctx, child.node.card(), "child")
    before = snapshot(parent.node)
    with pytest.raises(StateError, match="already linked to this node"):
        _confirm(parent, token, acceptance)
    assert snapshot(parent.node) == before
    assert _invite_state(parent, token) == "approved"


# --- refusals: each leaves both nodes as they were -----------------------------------------


def _request_with(
    parent: Party, child: Party, token: JoinToken, **changes: object
) -> enrollment_pb2.JoinRequest:
    """A correctly signed request whose transcript differs from the honest one by `changes`."""
    honest = joining.join_request(child.ctx, token, parent.cert)
    transcript = enrollment_pb2.JoinTranscript.FromString(honest.transcript)
    for key, value in changes.items():
        setattr(transcript, key, value)
    data = transcript.SerializeToString()
    ed, tls = sign_join(data, child.ctx.signing_key, child.ctx.config.tls_key.read_bytes())
    return enrollment_pb2.JoinRequest(
        transcript=data,
        signing_signature=ed,
        tls_signature=tls,
        child_tls_cert_pem=honest.child_tls_cert_pem,
        secret=honest.secret,
    )


# An unknown invite and a wrong secret get one answer (issue 21.12; the log tells them
# apart: tests/unit/services/test_join_privacy.py).
NO_INVITE = "id-64 has no open invite that this token matches"
REFUSALS = [
    pytest.param("expired", StateError, "expired on 2026-03-04 08:00:00 UTC", id="expired"),
    pytest.param("used", StateError, "already used", id="reused-by-another-node"),
    pytest.param("other-child", PermissionDeniedError, "issued for id-64-02", id="other-child"),
    pytest.param("relay", PermissionDeniedError, "presented its own certificate", id="relay"),
    pytest.param("clock", StateError, "clocks disagree: id-64-02's says", id="clock"),
    pytest.param("secret", PermissionDeniedError, NO_INVITE, id="wrong-secret"),
    pytest.param("invite", PermissionDeniedError, NO_INVITE, id="unknown-invite"),
    pytest.param("linked", StateError, "already linked to this node", id="already-linked"),
    pytest.param("claimed", StateError, "another node calling itself", id="claimed"),
    pytest.param("signature", SignatureError, "does not verify", id="bad-signature"),
]


@pytest.mark.parametrize(("case", "error", "message"), REFUSALS)
def test_bad_joins_are_refused_and_change_nothing(
    party: Callable[[str, str], Party], case: str, error: type[NodeError], message: str
) -> None:
    """Each bad join is refused with a message that says what happened, and leaves no link,
    ledger entry, or used invite on either side."""
    parent = party("id-64", "Provinsi Kalimantan Timur")
    child = party("id-64-02", "Kabupaten Kutai Kartanegara")
    token = _invite(parent)
    if case == "expired":
        parent.clock.advance(TTL + dt.timedelta(minutes=1))
        child.clock.advance(TTL + dt.timedelta(minutes=1))
        request = joining.join_request(child.ctx, token, parent.cert)
    elif case == "used":
        _link_up(parent, child, token)
        request = _request_for_twin(parent, child, token)
    elif case == "linked":
        second = _invite(parent)  # issued before the first was used
        _link_up(parent, child, token)
        request = _request_for_twin(parent, child, second)
    elif case == "claimed":
        manual = _invite(parent, approval="manual")
        _join(parent, child, manual)
        request = _request_for_twin(parent, child, manual)
    elif case == "other-child":
        other = party("id-64-08", "Kabupaten Kutai Timur")
        request = joining.join_request(other.ctx, token, parent.cert)
    elif case == "relay":
        request = _request_with(parent, child, token, parent_tls_cert_sha256=bytes(32))
    elif case == "clock":
        child.clock.advance(dt.timedelta(minutes=6))
        request = joining.join_request(child.ctx, token, parent.cert)
    elif case == "secret":
        request = joining.join_request(child.ctx, replace(token, secret=b"x" * 32), parent.cert)
    elif case == "invite":
        request = joining.join_request(child.ctx, replace(token, invite_id="e" * 32), parent.cert)
    else:
        request = joining.join_request(child.ctx, token, parent.cert)
        request.signing_signature = bytes(64)
    before = (snapshot(parent.node), snapshot(child.node), _invites(parent))
    with pytest.raises(error, match=message):
        join_answers.answer_join(parent.ctx, request)
    assert (snapshot(parent.node), snapshot(child.node), _invites(parent)) == before


def _request_for_twin(parent: Party, child: Party, token: JoinToken) -> enrollment_pb2.JoinRequest:
    """`child`'s node id joining with other keys: a reinstalled node, or an impostor."""
    key = SigningKey.generate()
    tls = generate_tls_identity(child.ctx.node_id, NOW)
    transcript = enrollment_pb2.JoinTranscript(
        invite_id=token.invite_id,
        secret_sha256=token.secret_sha256,
        parent_id=token.parent_id,
        parent_tls_cert_sha256=fingerprint(parent.cert),
        child=trust_pb2.NodeKeys(
            node_id=child.ctx.node_id,
            name="reinstalled",
            signing_key=key.public.raw,
            tls_cert_sha256=fingerprint(tls.cert_pem),
        ),
    )
    transcript.requested_at.FromDatetime(child.clock.now())
    data = transcript.SerializeToString()
    ed, sig = sign_join(data, key, tls.key_pem)
    return enrollment_pb2.JoinRequest(
        transcript=data,
        signing_signature=ed,
        tls_signature=sig,
        child_tls_cert_pem=tls.cert_pem.decode(),
        secret=token.secret,
    )


def test_the_child_refuses_tokens_it_cannot_use(party: Callable[[str, str], Party]) -> None:
    """Before any connection: a token for another node id, an expired token, or a join while
    this node already has another parent is refused with what to do."""
    parent = party("id-64", "Provinsi Kalimantan Timur")
    child = party("id-64-02", "Kabupaten Kutai Kartanegara")
    other = party("id-64-08", "Kabupaten Kutai Timur")
    token = _invite(parent)
    with pytest.raises(
        PermissionDeniedError, match=r"this token is for id-64-02 .* this node is id-64-08"
    ):
        joining.check_token(other.ctx, token)
    late = replace(token, expires_at=NOW - dt.timedelta(minutes=10))
    with pytest.raises(StateError, match="expired on 2026-03-02 07:50:00 UTC"):
        joining.check_token(child.ctx, late)
    _link_up(parent, child, token)
    elsewhere = replace(token, parent_id="id-63", parent_tls_sha256=bytes(32))
    with pytest.raises(StateError, match="already has a parent, id-64"):
        joining.check_token(child.ctx, elsewhere)


def test_an_altered_answer_is_refused_by_the_child(party: Callable[[str, str], Party]) -> None:
    """The child checks the parent's answer: another certificate, an agreement for other keys,
    or a bad parent signature is refused before it countersigns or records anything."""
    parent = party("id-64", "Provinsi Kalimantan Timur")
    child = party("id-64-02", "Kabupaten Kutai Kartanegara")
    token = _invite(parent)
    response = _join(parent, child, token)
    cases: list[tuple[enrollment_pb2.JoinResponse, str]] = []
    other_cert = enrollment_pb2.JoinResponse()
    other_cert.CopyFrom(response)
    other_cert.parent_tls_cert_pem = child.cert.decode()
    cases.append((other_cert, "certificate other than the token's"))
    bad_sig = enrollment_pb2.JoinResponse()
    bad_sig.CopyFrom(response)
    bad_sig.parent_signature = bytes(64)
    cases.append((bad_sig, "not signed by its parent"))
    renamed = enrollment_pb2.JoinResponse()
    renamed.CopyFrom(response)
    renamed.parent_name = "Provinsi Lain"
    cases.append((renamed, "does not name id-64 with the keys"))
    before = snapshot(child.node)
    for answer, message in cases:
        with pytest.raises(NodeError, match=message):
            joining.accept(child.ctx, token, answer)
    assert snapshot(child.node) == before


def test_confirm_checks_the_countersignature(party: Callable[[str, str], Party]) -> None:
    """Confirm with other agreement bytes or a signature by another key changes nothing."""
    parent = party("id-64", "Provinsi Kalimantan Timur")
    child = party("id-64-02", "Kabupaten Kutai Kartanegara")
    token = _invite(parent)
    acceptance = joining.accept(child.ctx, token, _join(parent, child, token))
    before = snapshot(parent.node)
    forged = trust_pb2.SignedLinkAgreement()
    forged.CopyFrom(acceptance.agreement)
    forged.child_signature = bytes(64)
    with pytest.raises(SignatureError, match="countersignature"):
        _confirm(parent, token, replace(acceptance, agreement=forged))
    forged.CopyFrom(acceptance.agreement)
    forged.agreement += b"\x00"
    with pytest.raises(ValidationError, match="not the one id-64 signed"):
        _confirm(parent, token, replace(acceptance, agreement=forged))
    assert snapshot(parent.node) == before
    assert _invite_state(parent, token) == "approved"


# --- revocation and link list ---------------------------------------------------------------


def test_revoke_records_a_signed_revocation_and_unpins(party: Callable[[str, str], Party]) -> None:
    """A parent revokes its child (and a child may leave its parent): LinkRevoked, signed by
    the revoking node, in its ledger; the peer is no longer pinned; twice is refused."""
    parent = party("id-64", "Provinsi Kalimantan Timur")
    child = party("id-64-02", "Kabupaten Kutai Kartanegara")
    _link_up(parent, child, _invite(parent))
    parent.clock.advance(dt.timedelta(hours=1))
    revoked = links.revoke(parent.ctx, "id-64-02", "unit dissolved")
    assert (revoked.peer_id, revoked.role, revoked.ledger_index) == ("id-64-02", "child", 1)
    entry = _entries(parent)[1]
    revocation = open_revocation(entry.link_revoked.revocation)
    assert (revocation.parent_id, revocation.child_id, revocation.revoked_by) == (
        "id-64",
        "id-64-02",
        "id-64",
    )
    assert revocation.child_signing_key == child.ctx.signing_key.public.raw
    assert revocation.reason == "unit dissolved"
    assert links.pins(parent.ctx) == []
    with pytest.raises(StateError, match="already revoked"):
        links.revoke(parent.ctx, "id-64-02", "")
    with pytest.raises(StateError, match="cannot link the same node id again"):
        _invite(parent)
    left = links.revoke(child.ctx, "id-64", "")
    revocation = open_revocation(_entries(child)[1].link_revoked.revocation)
    assert left.role == "parent" and revocation.revoked_by == "id-64-02"
    with pytest.raises(NotFoundError):
        links.revoke(child.ctx, "id-64-08", "")


def test_link_list_shows_expected_children_and_the_tally(
    party: Callable[[str, str], Party],
) -> None:
    """Expected children (ids or {id, name}) are listed linked or not, with why a child is not
    connected; a stale connection mark does not count; lag is the oldest unacked envelope."""
    parent = party("id-64", "Provinsi Kalimantan Timur")
    kukar = party("id-64-02", "Kabupaten Kutai Kartanegara")
    text = parent.node.config.read_text().replace(
        "expected_children: []",
        "expected_children:\n"
        "  - {id: id-64-02, name: Kabupaten Kutai Kartanegara}\n"
        "  - {id: id-64-08, name: Kabupaten Kutai Timur}\n"
        "  - id-64-11\n",
    )
    parent.node.config.write_text(text)
    parent.ctx = NodeContext.open(parent.node.config, clock=parent.clock)
    _link_up(parent, kukar, _invite(parent))
    invites.invite(parent.ctx, "id-64-11", "Kabupaten Mahakam Ulu", TTL, "manual", ADDRESSES)
    links.mark_connected(parent.ctx, "id-64-02", True)
    report = links.link_report(parent.ctx)
    assert [(v.peer_id, v.state, v.expected) for v in report.rows] == [
        ("id-64-02", "connected", True),
        ("id-64-08", "never linked", True),
        ("id-64-11", "invited", True),
    ]
    assert report.summary() == (
        "1 of 3 expected children connected; not connected: id-64-08 Kabupaten Kutai Timur "
        "(never linked), id-64-11 Kabupaten Mahakam Ulu (invited, token expires "
        "2026-03-04 08:00:00 UTC)"
    )
    parent.clock.advance(links.STALE_AFTER + dt.timedelta(seconds=1))
    (kukar_row,) = [v for v in links.link_report(parent.ctx).rows if v.peer_id == "id-64-02"]
    assert kukar_row.state == "not connected" and not kukar_row.connected
    links.mark_connected(parent.ctx, "id-64-02", False)
    report = links.link_report(parent.ctx)
    assert "id-64-02 Kabupaten Kutai Kartanegara (last seen 2026-03-02 08:00:00 UTC)" in (
        report.summary()
    )
    parent.ctx.close()


def test_exports_of_joined_nodes_verify_after_a_referral(
    party: Callable[[str, str], Party],
) -> None:
    """A referral over a link made by join: both ledgers' exports still verify."""
    import io

    parent = party("id-64", "Provinsi Kalimantan Timur")
    child = party("id-64-02", "Kabupaten Kutai Kartanegara")
    _link_up(parent, child, _invite(parent))
    draft = ComplaintDraft(
        title="Jalan rusak",
        description="Lubang besar",
        classification="pengaduan",
        category="infrastruktur",
        region_code="64.02",
        channel="walk_in",
    )
    complaints.refer(parent.ctx, complaints.submit(parent.ctx, draft), "id-64-02")
    assert hand_over(parent.node, child.node).applied == 1
    hand_over(child.node, parent.node)
    for side in (parent, child):
        out = io.StringIO()
        audit.export(side.ctx, out)
        verify_export(out.getvalue().splitlines(keepends=True))
