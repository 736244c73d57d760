"""A join with an unknown invite and one with a wrong secret are answered alike, so a
caller cannot learn which invites exist; the log tells the operator which it was, without
the secret (issue 21.12)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from structlog.testing import capture_logs

from node._proto.lapor.v1 import enrollment_pb2
from node.clock import FixedClock
from node.errors import PermissionDeniedError
from node.services import invites, join_answers, joining
from node.services.context import NodeContext
from tests.conftest import NodeFactory
from tests.unit.services.test_enrollment import ADDRESSES, NOW, TTL


@pytest.fixture
def nodes_up(nodes: NodeFactory) -> Iterator[tuple[NodeContext, NodeContext]]:
    parent = NodeContext.open(nodes("id-64", "Provinsi").config, clock=FixedClock(NOW))
    child = NodeContext.open(nodes("id-64-02", "Kabupaten").config, clock=FixedClock(NOW))
    yield parent, child
    parent.close()
    child.close()


def _refusal(
    parent: NodeContext, request: enrollment_pb2.JoinRequest
) -> tuple[str, dict[str, Any]]:
    with capture_logs() as logs, pytest.raises(PermissionDeniedError) as raised:
        join_answers.answer_join(parent, request)
    events = [e for e in logs if e["event"] == "join.token_refused"]
    assert len(events) == 1, logs
    return str(raised.value), events[0]


def test_unknown_invite_and_wrong_secret_answer_alike(
    nodes_up: tuple[NodeContext, NodeContext],
) -> None:
    """Both refusals carry the same message; the warning log names the difference and the
    invite's first digits, never the secret."""
    parent, child = nodes_up
    token = invites.invite(parent, "id-64-02", "Kabupaten", TTL, "auto", ADDRESSES)
    cert = parent.config.tls_cert.read_bytes()
    wrong_secret = replace(token, secret=b"\x5a" * 32)
    unknown = replace(token, invite_id="e" * 32)

    secret_message, secret_log = _refusal(parent, joining.join_request(child, wrong_secret, cert))
    unknown_message, unknown_log = _refusal(parent, joining.join_request(child, unknown, cert))

    assert secret_message == unknown_message
    assert "no open invite" in secret_message
    assert secret_log["log_level"] == unknown_log["log_level"] == "warning"
    assert secret_log["reason"] != unknown_log["reason"]
    assert "secret" in secret_log["reason"]
    assert "no invite" in unknown_log["reason"]
    assert secret_log["invite"] == token.invite_id[:8]
    assert unknown_log["invite"] == "e" * 8
    for event in (secret_log, unknown_log):
        text = repr(event)
        for secret in (token.secret, wrong_secret.secret):
            assert secret.hex() not in text
            assert repr(secret) not in text


def test_confirm_with_an_unknown_invite_does_not_echo_caller_text(
    nodes_up: tuple[NodeContext, NodeContext],
) -> None:
    """A Confirm naming something that is not an invite id is refused alike, and the log
    shows no text of the caller's."""
    parent, _ = nodes_up
    request = enrollment_pb2.ConfirmRequest(invite_id="<script>", secret=b"s" * 32)
    with capture_logs() as logs, pytest.raises(PermissionDeniedError, match="no open invite"):
        join_answers.answer_confirm(parent, request)
    (event,) = [e for e in logs if e["event"] == "join.token_refused"]
    assert "<script>" not in repr(event)
