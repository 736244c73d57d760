"""The values of a reconciliation (node.ledger.reconcile): what it reports, and what it
keeps of each export while reading it.

Pure values. `PAIRS` is the one table of envelope kinds matched between parent and child
(step 3); a new envelope kind is one line there. The records below `Reconciliation`
(Cp, Env, Receipt, Probe, Link) are what a scan keeps per envelope, receipt, probed entry
and link: ids, hashes and times, never an entry's contents, so memory grows with the
envelopes between the two nodes only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from node._proto.lapor.v1 import ledger_pb2

__all__ = [
    "BY_KIND",
    "CHILD",
    "FORKS",
    "LOST",
    "NEVER",
    "PAIRS",
    "PAIR_OF",
    "PARENT",
    "PENDING_KINDS",
    "RECEIPT",
    "ROLES",
    "SLACK",
    "Cp",
    "Env",
    "ExportSummary",
    "Finding",
    "LineSource",
    "Link",
    "Pair",
    "Probe",
    "Receipt",
    "Reconciliation",
]

LineSource = Callable[[], Iterable[str | bytes]]
"""Yields an export's lines from the start each time it is called."""

PARENT, CHILD = "parent", "child"
LOST = "lost-in-discontinuity"
PENDING_KINDS = frozenset({"in-flight", "export-behind", LOST})
"""Finding kinds that are listed but are not discrepancies."""
SLACK = dt.timedelta(seconds=1)
"""How long before an export was taken an envelope still counts as sent after it: the
time a sender's transaction takes to commit, and the receiving node to record it."""


@dataclass(frozen=True)
class Pair:
    """One kind of envelope between the two nodes: its payload (the Envelope oneof member),
    the sender's and the receiver's LedgerEntry kind (None: that side does not ledger it)."""

    payload: str
    sent: str | None
    received: str | None


PAIRS: tuple[Pair, ...] = (
    Pair("referral", sent="referral_sent", received="referral_received"),
    Pair("receipt", sent=None, received="receipt_received"),  # step 4 matches receipts
    # The complaint lifecycle: status updates go up, reporter replies go down.
    Pair("status_update", sent="status_update_sent", received="status_update_received"),
    Pair("reporter_reply", sent="reply_sent", received="reply_received"),
    # A confidential reporter's identity, sealed, goes down to the holder.
    Pair("sealed_identity", sent="sealed_identity_sent", received="sealed_identity_received"),
)
"""The matching table of step 3: a new envelope kind is one line here."""

BY_KIND = {
    kind: (pair, is_sent)
    for pair in PAIRS
    for kind, is_sent in ((pair.sent, True), (pair.received, False))
    if kind is not None
}
PAIR_OF = {pair.payload: pair for pair in PAIRS}
RECEIPT = "receipt"
NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)
FORKS: dict[int, str] = {
    ledger_pb2.FORK_KIND_SAME_SIZE: "two of the same size",
    ledger_pb2.FORK_KIND_INCONSISTENT: "not consistent with each other",
    ledger_pb2.FORK_KIND_ROLLBACK: "a rollback",
}
ROLES: dict[int, str] = {ledger_pb2.PEER_ROLE_PARENT: PARENT, ledger_pb2.PEER_ROLE_CHILD: CHILD}


@dataclass(frozen=True)
class Finding:
    """One thing found: its kind (module docstring), where in each ledger, and what.

    `message_id` and `payload` are those of the envelope at fault (for a receipt finding,
    the receipt's; the referral it names is in `detail`)."""

    kind: str
    detail: str
    parent_index: int | None = None
    child_index: int | None = None
    tracking_id: str | None = None
    message_id: str | None = None
    payload: str | None = None

    @property
    def pending(self) -> bool:
        """True for in-flight and export-behind: listed, not counted as a discrepancy."""
        return self.kind in PENDING_KINDS

    def __str__(self) -> str:
        places = [
            f"{side} entry {i}"
            for side, i in ((PARENT, self.parent_index), (CHILD, self.child_index))
            if i is not None
        ]
        return f"{', '.join(places) or 'exports'}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class ExportSummary:
    """One verified export: whose, which key, how much, and when it was taken."""

    node_id: str
    vkey: str
    entries: int
    checkpoints: int
    exported_at: str


@dataclass(frozen=True)
class Reconciliation:
    """The outcome: every discrepancy, the pending items, and how much was compared."""

    parent: ExportSummary | None
    child: ExportSummary | None
    discrepancies: tuple[Finding, ...]
    pending: tuple[Finding, ...] = ()
    envelopes: int = 0
    """Envelopes found alike in both ledgers."""
    receipts: int = 0
    """Receipts checked against the child's entry they name."""
    checkpoints: int = 0
    """Carried checkpoints compared with the sender's exported tree."""

    @property
    def ok(self) -> bool:
        return not self.discrepancies


class Cp(NamedTuple):
    size: int
    root: bytes


class Env(NamedTuple):
    """What is kept of one envelope recorded in a ledger."""

    payload: str
    message_id: str
    idx: int  # the entry's index in this ledger
    tracking_id: str
    sent_at: dt.datetime
    body_sha256: bytes
    signature: bytes
    sequence: int = 0  # per link and direction (Envelope.sequence)


class Receipt(NamedTuple):
    env: Env
    referral_message_id: str
    referral_body_sha256: bytes
    entry_index: int
    carried: bool  # the envelope carries a checkpoint (good or bad)
    witness: Cp | None  # that checkpoint, verified


class Probe(NamedTuple):
    """An entry of the child's that a receipt names."""

    kind: str
    signer: str = ""
    message_id: str = ""
    body_sha256: bytes = b""


class Link(NamedTuple):
    idx: int
    role: int
    key: bytes
    tls_sha256: bytes
