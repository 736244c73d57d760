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
The one-process lock (node.services.datadir.hold) is the caller's, held for the process's
lifetime.
"""

from __future__ import annotations

from node.errors import IntegrityError, TamperedEntryError
from node.services import audit, datadir, fence
from node.services.context import NodeContext

__all__ = ["check_before_serving"]


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
