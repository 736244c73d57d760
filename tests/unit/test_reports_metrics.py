"""The workflow and refusal metrics (node.metrics): gauges set from one reading, and a
refused envelope counted as a verification failure only when its evidence failed."""

from __future__ import annotations

from prometheus_client import generate_latest

from node.errors import SignatureError, StateError
from node.metrics import REGISTRY, observe_refusal, observe_workflow


def _value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_workflow_gauges_follow_the_latest_reading() -> None:
    """Each reading replaces the last: statuses, overdue and breaches per deadline."""
    observe_workflow({"submitted": 2, "in_progress": 5}, 3, {"verify": 1, "resolve": 2})
    assert _value("lapor_node_complaints", status="in_progress") == 5
    assert _value("lapor_node_complaints_overdue") == 3
    assert _value("lapor_node_sla_breaches", deadline="resolve") == 2
    observe_workflow({"submitted": 0, "in_progress": 6}, 0, {"verify": 0, "resolve": 0})
    assert _value("lapor_node_complaints", status="submitted") == 0
    assert _value("lapor_node_complaints_overdue") == 0
    text = generate_latest(REGISTRY).decode()
    assert 'lapor_node_complaints{status="in_progress"} 6.0' in text


def test_refusals_and_verification_failures() -> None:
    """A bad signature counts as both; a wrong state only as a refusal."""
    before_sig = (
        _value("lapor_node_verification_failures_total", peer="id-64-99", kind="SignatureError")
        or 0
    )
    before_refused = (
        _value("lapor_node_refused_total", peer="id-64-99", code="UNAUTHENTICATED") or 0
    )
    before_state = _value("lapor_node_refused_total", peer="id-64-99", code="FAILED_PRECONDITION")
    observe_refusal("id-64-99", "UNAUTHENTICATED", SignatureError("bad signature"))
    observe_refusal("id-64-99", "FAILED_PRECONDITION", StateError("wrong state"))
    assert (
        _value("lapor_node_verification_failures_total", peer="id-64-99", kind="SignatureError")
        == before_sig + 1
    )
    assert (
        _value("lapor_node_refused_total", peer="id-64-99", code="UNAUTHENTICATED")
        == before_refused + 1
    )
    assert (
        _value("lapor_node_verification_failures_total", peer="id-64-99", kind="StateError") is None
    )
    after_state = _value("lapor_node_refused_total", peer="id-64-99", code="FAILED_PRECONDITION")
    assert after_state == (before_state or 0) + 1
