"""What `serve` checks before it signs anything (DESIGN.md, "Operating invariants").

In order, each refusing with what happened and what to do:
  1. the data directory, the keys folder and the SQLite files are private (0700/0600);
  2. the ledger is a consistent extension of the signing fence, the largest checkpoint
     this node has signed, kept outside the database (node.services.fence);
  3. the node's own ledger verifies as an auditor would verify it, against the key in its
     signing key file: no entry in it was written by anything but this node, and nothing
     committed was changed (node.services.audit.verify_own). A forged entry appended to
     the ledger table, tree and head made consistent, would otherwise be covered by the
     next checkpoint this node signs, and so vouched for to its parent.
  4. the complaints changed last equal the replay of the ledger (node.services.state_check,
     ``check_recent``: bounded to ``state_check.RECENT`` complaints). This one refuses
     nothing: a difference is a critical log line and a recorded result, which the
     reports show as a warning until `lapor-node audit state` passes again.
The one-process lock (node.services.datadir.hold) is the caller's, held for the process's
lifetime.
"""

from __future__ import annotations

from node.errors import IntegrityError, NodeError, TamperedEntryError
from node.logs import get_logger
from node.services import audit, datadir, fence, state_check
from node.services.context import NodeContext

__all__ = ["check_before_serving", "check_state_at_start"]

log = get_logger()


def check_before_serving(ctx: NodeContext) -> None:
    """Raise ConfigError or an IntegrityError unless the node may start signing."""
    datadir.check_private(ctx.config)
    fence.check_node_at_start(ctx)
    try:
        audit.verify_own(ctx)
    except IntegrityError as e:
        raise TamperedEntryError(
            f"expected this node's own ledger to verify, found: {e}. Something other than "
            f"this node wrote to or changed its ledger tables; serve signs nothing over them. "
            f"Restore the database from a backup made before the change (`lapor-node backup "
            f"restore`, docs/operator-guide.md, 'The signing fence') and keep the changed "
            f"database as evidence"
        ) from e
    check_state_at_start(ctx)


def check_state_at_start(ctx: NodeContext) -> state_check.StateReport | None:
    """Step 4: compare the complaints changed last with the ledger's replay; log and record
    what it found, refusing nothing (None if the check itself could not run)."""
    try:
        report = state_check.check_recent(ctx, record=False)
    except NodeError as e:
        log.error("state.check_failed", error=str(e))
        return None
    if report.ok:
        log.info("state.checked", complaints=report.complaints, entries=report.entries)
    else:
        _log_differences(report)
    try:
        state_check.record_result(ctx, report)
    except NodeError as e:  # e.g. a standby that may not write: the log line stands
        log.error("state.result_not_recorded", error=str(e))
    return report


def _log_differences(report: state_check.StateReport) -> None:
    log.critical(
        "state.differs_from_ledger",
        complaints=report.complaints,
        differences=len(report.differences),
        first=[d.describe() for d in report.differences[: state_check.SUMMARY_LIMIT]],
        action="the working tables were changed without the ledger; run `lapor-node audit "
        "state` to see every difference, keep the database as evidence and restore it from "
        "a backup made before the change",
    )
