"""Disposing complaints by node.yaml's routing rules (node.workflow.routing, docs/routing.md).

Invariants:

1. ``route`` only reads: it is the dry run of ``dispose`` and says the same thing
   ``dispose`` would do, from the same rules, links and complaint row.
2. ``dispose`` changes state only through ``node.services.referral`` (the referral in the
   ledger and the outbox, in the caller's transaction); the rules decide the child, or
   the operator's override does. A refused disposition changes nothing.
3. A complaint is disposed only where ``refer`` accepts it: this node holds it and its
   status is one a holder may refer from. A complaint a child returned (bukan wewenang) is
   never sent back to that same child by the rules; the operator picks another with
   ``--to``.
4. ``auto_dispose_in`` never raises: it runs inside the transaction of the action that
   triggers it (verify, or accepting a referral), in a savepoint of its own, so the two
   commit together, and a disposition that fails rolls back to the savepoint and leaves
   the action done. A complaint no rule sends anywhere, or that cannot be referred,
   simply stays where it is, with the reason in the log.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy.orm import Session

from node.errors import NodeError, NotFoundError, StateError
from node.faults import fault_point
from node.ids import parse_node_id, parse_tracking_id
from node.logs import get_logger
from node.services import referral
from node.services.context import NodeContext
from node.store import queries
from node.store.models import Complaint
from node.workflow.lifecycle import Status
from node.workflow.routing import ComplaintFacts, Decision, decide, describe

__all__ = [
    "auto_dispose",
    "auto_dispose_in",
    "dispose",
    "dispose_in",
    "route",
    "route_in",
]


def _facts(row: Complaint) -> ComplaintFacts:
    return ComplaintFacts(row.region_code, row.category, row.classification)


def _blocked(ctx: NodeContext, row: Complaint, decision: Decision) -> str | None:
    """Why the complaint cannot be disposed now, whatever the rules say (invariant 3)."""
    if row.holder != ctx.node_id:
        return f"it is {row.status} and held by {row.holder}; only the holder may dispose it"
    if row.status not in referral.REFERRABLE:
        return (
            f"it is {row.status}; a complaint can be disposed only when "
            f"{', '.join(sorted(referral.REFERRABLE))}"
        )
    if row.status == Status.escalated.value and row.referred_to is None:
        return "it is escalated beyond this node (Ombudsman RI)"
    if row.status == Status.returned.value and decision.target == row.referred_to:
        return (
            f"{row.referred_to} returned it (bukan wewenang); choose another unit with "
            "--to CHILD, or correct the rule"
        )
    return None


def route(ctx: NodeContext, tracking_id: str) -> Decision:
    """Where the routing rules send the complaint now, and why (a dry run: reads only).

    ``target`` is None when it would stay on this node: no rule matches, the rule's child
    is not linked, or the complaint cannot be disposed in its status or by this node.
    """
    with ctx.db.read() as session:
        return route_in(session, ctx, tracking_id)


def route_in(session: Session, ctx: NodeContext, tracking_id: str) -> Decision:
    """`route` in the caller's transaction."""
    parse_tracking_id(tracking_id)
    row = queries.get_complaint(session, tracking_id)
    if row is None:
        raise NotFoundError(f"no complaint {tracking_id} on this node")
    children = {
        link.peer_id
        for link in queries.list_links(session, active_only=True)
        if link.role == "child"
    }
    decision = decide(ctx.config.routing.rules, _facts(row), children)
    blocked = _blocked(ctx, row, decision)
    if blocked is None:
        return decision
    rules_say = f"they send it to {decision.target}" if decision.target else decision.reason
    return dataclasses.replace(
        decision,
        target=None,
        reason=f"it cannot be disposed now: {blocked}. As for the rules: {rules_say}",
    )


def dispose(ctx: NodeContext, tracking_id: str, *, override: str | None = None) -> str:
    """Refer the complaint to the child the rules decide, or to ``override`` (a linked
    child, the operator's choice); return the referral's message id."""
    with ctx.db.write() as session:
        return dispose_in(session, ctx, tracking_id, override=override)


def dispose_in(
    session: Session, ctx: NodeContext, tracking_id: str, *, override: str | None = None
) -> str:
    """`dispose` in the caller's transaction."""
    log = get_logger(node_id=ctx.node_id, complaint_id=tracking_id)
    if override is not None:
        child = parse_node_id(override)
        decision = route_in(session, ctx, tracking_id)  # NotFoundError before anything else
        message_id = referral.refer_many_in(session, ctx, [tracking_id], child)[0]
        log.info(
            "routing.disposed",
            to=child,
            by="override",
            rules_said=decision.target,
            message_id=message_id,
        )
        return message_id
    decision = route_in(session, ctx, tracking_id)
    if decision.target is None:
        raise StateError(
            f"{tracking_id} was not disposed: {decision.reason}. "
            f"`lapor-node complaint route {tracking_id}` lists the rules considered"
        )
    message_id = referral.refer_many_in(session, ctx, [tracking_id], decision.target)[0]
    rule = describe(decision.rule) if decision.rule is not None else None
    log.info("routing.disposed", to=decision.target, by="rule", rule=rule, message_id=message_id)
    return message_id


def auto_dispose(ctx: NodeContext, tracking_id: str) -> Decision:
    """`auto_dispose_in` in a transaction of its own (for a complaint verified or accepted
    earlier: the actions themselves dispose in their own transaction)."""
    with ctx.db.write() as session:
        return auto_dispose_in(session, ctx, tracking_id)


def auto_dispose_in(session: Session, ctx: NodeContext, tracking_id: str) -> Decision:
    """Dispose by the rules if node.yaml's ``routing.auto`` is on; never raises.

    Call it in the transaction that verified the complaint (or accepted it from the
    parent), after that work: the disposition runs in a savepoint, so it commits with that
    work or not at all, and one that fails leaves that work as it was (invariant 4).
    Returns the decision; ``target`` is None when the complaint stayed on this node, and
    ``reason`` says why (also logged).
    """
    log = get_logger(node_id=ctx.node_id, complaint_id=tracking_id)
    if not ctx.config.routing.auto:  # nothing to read or log: the common case
        return Decision(None, None, "routing.auto is off in node.yaml; nothing was done", ())
    fault_point("before_dispose")  # TEST ONLY (node.faults): the action done, not committed
    decision: Decision | None = None
    try:
        with session.begin_nested():
            decision = route_in(session, ctx, tracking_id)
            if decision.target is None:
                log.info("routing.stays", reason=decision.reason)
                return decision
            target = decision.target
            message_id = referral.refer_many_in(session, ctx, [tracking_id], target)[0]
    except NodeError as e:
        log.warning("routing.auto_failed", error=type(e).__name__, reason=str(e))
        return _stays(decision, f"not disposed: {e}")
    except Exception as e:  # the caller's action is done; it must not fail because of this
        log.exception("routing.auto_failed", error=type(e).__name__)
        return _stays(decision, f"not disposed: unexpected {type(e).__name__} (logged)")
    rule = describe(decision.rule) if decision.rule is not None else None
    log.info("routing.disposed", to=target, by="auto", rule=rule, message_id=message_id)
    return decision


def _stays(decision: Decision | None, reason: str) -> Decision:
    """``decision`` (if one was made) with no target and ``reason``."""
    if decision is None:
        return Decision(None, None, reason, ())
    return dataclasses.replace(decision, target=None, reason=reason)
