"""The link lifecycle on real nodes (separate `serve` processes, TLS and mutual TLS on
loopback), driven by the CLI as operators use it: invite, join (auto and manual), approve,
reject, every bad token, a man in the middle, revoke, and `link list`."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from node.clock import FixedClock
from node.config import FederationConfig, load_config
from node.crypto.linking import TOKEN_PREFIX, AddressPair, JoinToken
from node.errors import NodeError
from node.federation.enrollment_port import join
from node.services import invites, links
from node.services.context import NodeContext
from node.store.models import Invite
from tests.conftest import NodeFactory
from tests.integration.test_referral import SUBMIT
from tests.support.cli import run_cli
from tests.support.databases import fresh_database
from tests.support.nodes import TestNode, configure, make_node, snapshot, status_of
from tests.support.waits import (
    COMMAND_BOUND,
    connect_seconds,
    holds_throughout,
    pin_change_bound,
    redial_seconds,
    wait_until,
)

pytestmark = pytest.mark.slow

KUKAR = ("id-64-02", "Kabupaten Kutai Kartanegara")
KUTIM = ("id-64-08", "Kabupaten Kutai Timur")
JOIN_WAIT = 60  # seconds a `link join --wait` waits for the operator's decision
# The revoked regency's dialer (make_node's: a backoff of 100..1000 ms, dials of 5 s): a
# dial, and the wait before the next, are over sooner, and so are the windows in which it
# would have dialed again.
REVOKE_RECONNECT = {"reconnect_min_ms": 50, "reconnect_max_ms": 200, "connect_timeout_ms": 1000}
REVOKE_FEDERATION = FederationConfig(**REVOKE_RECONNECT)


def _enrollment_address(node: TestNode) -> str:
    return load_config(node.config).server.enrollment_address


def _start(*started: TestNode) -> None:
    """Start nodes and wait for their enrollment ports too."""
    for node in started:
        node.start()
        host, _, port = _enrollment_address(node).rpartition(":")

        def listening(h: str = host, p: int = int(port)) -> bool:
            with socket.socket() as s:
                return s.connect_ex((h, p)) == 0

        wait_until(listening, what=f"{node.node_id}'s enrollment port")


def _invite(parent: TestNode, child: tuple[str, str], *extra: str) -> str:
    out = parent.cli("link", "invite", "--child", child[0], "--name", child[1], *extra).stdout
    token = out.strip()
    assert token.startswith(TOKEN_PREFIX) and "\n" not in token
    return token


def _rows(node: TestNode) -> dict[str, links.LinkView]:
    """What `link list --json` shows (read in-process: polling with the CLI is slow)."""
    return {row.peer_id: row for row in links.link_report(node.ctx()).rows}


def _count(node: TestNode, event: str) -> int:
    """How many times `node`'s serve log has `event`."""
    return node.log_path.read_text().count(f'"event": "{event}"')


def _connected(node: TestNode, peer: str) -> bool:
    row = _rows(node).get(peer)
    return row is not None and row.connected


def _invite_states(node: TestNode) -> list[tuple[str, str]]:
    with node.ctx().db.read() as session:
        rows = session.execute(select(Invite).order_by(Invite.created_at)).scalars()
        return [(row.child_id, row.state) for row in rows]


def _state(*of: TestNode) -> list[object]:
    """What a refused join must leave as it was: tables, ledger, links, invite states."""
    return [(snapshot(node), _invite_states(node)) for node in of]


def _popen_join(node: TestNode, token: str, *extra: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "node.cli.main", "link", "join", token, *extra]
    return subprocess.Popen(
        [*argv, "--config", str(node.config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def _retoken(token: str, **fields: object) -> str:
    """The token as someone holding it (and so its secret) would rewrite it: fields changed
    and the check value made again."""
    parsed = JoinToken.decode(token)
    return replace(parsed, **fields).encode()  # type: ignore[arg-type]


@pytest.fixture
def twin(db_kind: str, tmp_path: Path) -> Iterator[TestNode]:
    """Another node calling itself id-64-02, with keys of its own (a reinstalled regency, or
    an impostor)."""
    with ExitStack() as stack:
        url = stack.enter_context(fresh_database(db_kind, tmp_path))
        node = make_node(tmp_path / "twin", KUKAR[0], KUKAR[1], url)
        stack.callback(node.close)
        yield node


def test_join_links_running_nodes_and_a_referral_crosses(nodes: NodeFactory) -> None:
    """invite + join (auto) while both nodes serve: the agreement is in both ledgers, the
    stream comes up over mutual TLS without a restart, a referral crosses, `link list`
    tallies the expected children, and running join again changes nothing."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes(*KUKAR)
    province.config.write_text(
        province.config.read_text().replace(
            "expected_children: []",
            f'expected_children:\n  - {{id: {KUKAR[0]}, name: "{KUKAR[1]}"}}\n'
            f'  - {{id: {KUTIM[0]}, name: "{KUTIM[1]}"}}\n',
        )
    )
    _start(province, regency)
    token = _invite(province, KUKAR, "--ttl", "1h")
    joined = regency.cli("link", "join", token).stdout
    assert "linked to id-64 (Provinsi Kalimantan Timur) as its child" in joined
    wait_until(lambda: _connected(province, KUKAR[0]), what="the province to see the regency")
    wait_until(lambda: _connected(regency, "id-64"), what="the regency to see the province")

    listed = province.cli("link", "list").stdout
    assert (
        "1 of 2 expected children connected; not connected: id-64-08 Kabupaten Kutai Timur "
        "(never linked)" in listed
    )
    assert [(s["ledger_entries"], s["links"]) for s in (snapshot(province), snapshot(regency))] == [
        (1, [(KUKAR[0], 1, 0)]),
        (1, [("id-64", 1, 0)]),
    ]
    assert _invite_states(province) == [(KUKAR[0], "used")]

    tracking = json.loads(province.cli(*SUBMIT).stdout)["tracking_id"]
    province.cli("complaint", "refer", tracking, "--to", KUKAR[0])
    wait_until(
        lambda: status_of(province, tracking) == ("accepted", KUKAR[0]),
        what="the regency's receipt over the joined link",
    )
    before = _state(province, regency)
    again = regency.cli("link", "join", token).stdout
    assert "already linked to id-64" in again
    assert _state(province, regency) == before


def test_manual_approval_then_reject(nodes: NodeFactory) -> None:
    """--approve manual: `link join` waits until `link approve`; `link reject` ends a waiting
    join with the reason and leaves nothing behind; --wait gives up with what to do."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    kukar = nodes(*KUKAR)
    kutim = nodes(*KUTIM)
    _start(province)
    token = _invite(province, KUKAR, "--approve", "manual")
    waiting = _popen_join(kukar, token, "--wait", f"{JOIN_WAIT}s")
    wait_until(
        lambda: _rows(province)[KUKAR[0]].state == "waiting for approval",
        what="the join to wait for approval",
    )
    approved = province.cli("link", "approve", KUKAR[0]).stdout
    assert "approved the join of id-64-02" in approved
    out, err = waiting.communicate(timeout=JOIN_WAIT + COMMAND_BOUND)
    assert waiting.returncode == 0, err
    assert "waiting for the operator of id-64 to approve" in err
    assert "linked to id-64" in out

    token = _invite(province, KUTIM, "--approve", "manual")
    before = _state(kutim)
    gave_up = kutim.cli("link", "join", token, "--wait", "1s", check=False)
    assert gave_up.returncode == 1
    assert "still waiting for the operator of id-64 to approve, after 1s" in gave_up.stderr
    assert "run `lapor-node link join` again with the same token" in gave_up.stderr
    refused = _popen_join(kutim, token, "--wait", f"{JOIN_WAIT}s")
    wait_until(
        lambda: _rows(province)[KUTIM[0]].state == "waiting for approval",
        what="the second join to wait",
    )
    province.cli("link", "reject", KUTIM[0], "--reason", "bukan wewenang")
    _, err = refused.communicate(timeout=JOIN_WAIT + COMMAND_BOUND)
    assert refused.returncode == 1
    assert "the operator of id-64 rejected this join: bukan wewenang" in err
    assert _state(kutim) == before
    assert snapshot(province)["links"] == [(KUKAR[0], 1, 0)]
    assert _invite_states(province) == [(KUKAR[0], "used"), (KUTIM[0], "rejected")]


def test_bad_tokens_are_refused_and_leave_no_half_link(nodes: NodeFactory, twin: TestNode) -> None:
    """Each bad join says what happened and what to do, and leaves neither side with a
    link, a ledger entry or a used invite (a man in the middle is refused by fingerprint
    before anything is sent to it)."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    national = nodes("id", "Nasional")  # only a TLS server with another certificate here
    kukar = nodes(*KUKAR)
    kutim = nodes(*KUTIM)
    for node in (province, national):
        # No interval checkpoint may land between a snapshot and the next, however long the
        # test takes on a busy machine: each refused join must be all that happened.
        text = node.config.read_text()
        assert "checkpoint_interval_seconds: 60" in text
        node.config.write_text(
            text.replace("checkpoint_interval_seconds: 60", "checkpoint_interval_seconds: 86400")
        )
    _start(province, national)
    good = _invite(province, KUKAR)
    spare = _invite(province, KUKAR)  # a second invite, issued before the first is used

    # The parent's clock says the token expired two minutes ago (the child's check allows
    # for clocks a little apart, so the parent is the one to refuse).
    past = FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=7))
    with _ctx(province, past) as ctx:
        expired = invites.invite(
            ctx,
            KUKAR[0],
            KUKAR[1],
            dt.timedelta(minutes=5),
            "auto",
            [AddressPair(province.address, _enrollment_address(province))],
        ).encode()
    fields = _token_fields(good)
    fields["child_name"] = "Kabupaten Lain"
    edited = _encode(fields)
    mitm = _retoken(
        good,
        addresses=(AddressPair(province.address, _enrollment_address(national)),),
    )
    wrong_fp = _retoken(good, parent_tls_sha256=bytes(32))
    cases = [
        (kukar, expired, "this join token expired on"),
        (
            kutim,
            good,
            "this token is for id-64-02 (Kabupaten Kutai Kartanegara), and this node is id-64-08",
        ),
        (kukar, edited, "the join token was altered or damaged"),
        (kukar, wrong_fp, "presented a TLS certificate with SHA-256"),
        (kukar, mitm, "it is not id-64 (a wrong address, or someone in between). Nothing was sent"),
    ]
    for child, token, message in cases:
        before = _state(province, national, child)
        result = child.cli("link", "join", token, check=False)
        assert result.returncode == 1, result.stdout
        assert message in result.stderr, result.stderr
        assert _state(province, national, child) == before
    heard = national.log_path.read_text()
    assert "enrollment.join" not in heard and "enrollment.refused" not in heard  # sent nothing

    # A clock far off: the parent says both times.
    ahead = FixedClock(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    before = _state(province, kukar)
    with _ctx(kukar, ahead) as ctx, pytest.raises(NodeError) as raised:
        join(ctx, JoinToken.decode(good), wait=dt.timedelta(seconds=5))
    assert "the clocks disagree: id-64-02's says" in str(raised.value)
    assert "id-64's says" in str(raised.value) and "NTP" in str(raised.value)
    assert _state(province, kukar) == before

    # The real regency joins; the token is then spent, and the id is taken.
    kukar.cli("link", "join", good)
    for token, message in [
        (good, "this join token was already used on"),
        (spare, "id-64-02 is already linked to this node"),
    ]:
        before = _state(province, twin)
        result = twin.cli("link", "join", token, check=False)
        assert result.returncode == 1
        assert message in result.stderr, result.stderr
        assert _state(province, twin) == before


def test_revoke_closes_the_stream_and_refuses_reconnects(
    nodes: NodeFactory, tmp_path: Path
) -> None:
    """`link revoke` on the parent: the live stream drops at the parent's next pin refresh,
    the child is told, says once how to rejoin and stops dialing (also after a restart),
    LinkRevoked is in the ledger, and both exports still verify."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes(*KUKAR)
    # The regency's backoff short, so the windows in which it would have dialed again are.
    configure(regency, **REVOKE_RECONNECT)
    _start(province, regency)
    regency.cli("link", "join", _invite(province, KUKAR))
    wait_until(lambda: _connected(regency, "id-64"), what="the link to come up")

    revoked = province.cli("link", "revoke", KUKAR[0], "--reason", "uji pencabutan").stdout
    assert "revoked the link with id-64-02 (its child): ledger entry 1" in revoked
    wait_until(
        lambda: "ended its link with id-64-02" in str(_rows(regency)["id-64"].last_error),
        timeout=pin_change_bound(),
        what="the regency to be told",
    )
    assert not _connected(regency, "id-64")
    assert _rows(province)[KUKAR[0]].state == "revoked"
    error = str(_rows(regency)["id-64"].last_error)
    assert error.startswith("link revoked by parent id-64 (PERMISSION_DENIED: ")
    assert "to rejoin run `lapor-node link revoke id-64" in error
    wait_until(lambda: _count(regency, "link.revoked_by_parent") == 1, what="the warning")
    # The regency dials no more: in the time a backing-off dialer would have tried again
    # (a full round of attempts), it logs no attempt and no new warning; nor after a restart.
    attempts = ("link.unreachable", "link.redial", "link.rpc_error", "link.failed")
    for restarted in (False, True):
        if restarted:
            regency.stop()
            regency.start()
            wait_until(lambda: _count(regency, "link.revoked_by_parent") == 2, what="the warning")
        before = {event: _count(regency, event) for event in attempts}
        holds_throughout(
            lambda: {event: _count(regency, event) for event in attempts} == before,  # noqa: B023 - read at once
            redial_seconds(REVOKE_FEDERATION) + connect_seconds(REVOKE_FEDERATION),
            what="a regency that does not dial",
        )
        assert not _connected(regency, "id-64")
    assert str(_rows(regency)["id-64"].last_error) == error

    for node in (province, regency):
        export = tmp_path / f"{node.node_id}.jsonl"
        node.cli("audit", "export", "--out", str(export))
        verified = run_cli(["audit", "verify", str(export), "--json"])
        assert verified.returncode == 0, verified.stdout + verified.stderr
    kinds = [json.loads(line) for line in (tmp_path / "id-64.jsonl").read_text().splitlines()]
    assert sum(1 for k in kinds if k["type"] == "entry") == 2  # agreed, revoked


# --- helpers ------------------------------------------------------------------------------


@contextmanager
def _ctx(node: TestNode, clock: FixedClock) -> Iterator[NodeContext]:
    """A NodeContext for `node` whose time is `clock`'s."""
    context = NodeContext.open(node.config, clock=clock)
    try:
        yield context
    finally:
        context.close()


def _token_fields(token: str) -> dict[str, object]:
    body = token.removeprefix(TOKEN_PREFIX)
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))  # type: ignore[no-any-return]


def _encode(fields: dict[str, object]) -> str:
    raw = json.dumps(fields, separators=(",", ":")).encode()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")
