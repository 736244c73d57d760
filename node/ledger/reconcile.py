"""Reconciling a parent's and a child's audit exports: does each ledger record the envelopes
between the two nodes exactly as the other does?

Pure: lines in, a report out; no database, no network, no files. An export is given as a
`LineSource`, a callable that yields its lines afresh, because it is read more than once:
its first line is peeked (node id, size); then it is verified and read in ONE pass (each
line `verify_export` has checked is read again by a collector); and the parent's is scanned
once more only if the child holds a checkpoint of the parent at a size that the parent's
export has no checkpoint of. Memory grows with the envelopes between the two nodes only:
per envelope its ids, hashes and time, never an entry; per tree only the frontier.

Where each job lives: this module runs the steps (`reconcile_exports`); reading one export
is node.ledger._reconcile_scan, comparing the two node.ledger._reconcile_compare, and the
values both use (findings, the PAIRS table, the kept records) node.ledger._reconcile_model.

Steps, each run to the end so that EVERY discrepancy is listed:
  1. each export verifies on its own (node.ledger.verify.verify_export), the parent's under
     the trusted vkey if given. The child's key needs no separate trust: step 2 checks it is
     the key the parent pinned. If one fails, that is the only finding: reconciling a
     ledger that does not verify proves nothing.
  2. links: the parent's ledger records LinkEstablished for the child with role CHILD, the
     child export's signing key and a TLS fingerprint; the child's, likewise for the parent
     with role PARENT. The latest such entry counts.
  3. envelopes (PAIRS, matched by payload and message id): every envelope one side recorded
     as sent to the other is recorded as received by the other, with the same SHA-256 of
     the body and the same signature; every envelope one side recorded as received from the
     other was recorded as sent by it. The child does not ledger the receipts it sends, so
     receipts are matched by step 4 instead.
  4. receipts: each receipt the parent holds names a referral the parent's ledger records
     as sent to the child (message id, body hash, tracking id); it carries a checkpoint of
     the child that covers its entry_index; the child's entry at entry_index is the
     referral_received of that message id and body hash.
  5. carried checkpoints (Envelope.checkpoint): each one verifies under the key the
     receiver pinned for the sender, for the sender's origin (c2sp.org/signed-note), and its
     root equals the root recomputed from the sender's export at its size (RFC 9162
     section 2.1.1). All roots come from one tree, so no consistency proof is needed.
     Only a receipt must carry one: ledgers from before witnessing hold envelopes without.
  6. timing, by the sender's signed `sent_at` and the header's `exported_at`: an envelope
     sent after the export that lacks it was taken is in flight, and a checkpoint or entry
     vouched for after the sender's export was taken is beyond it. Neither is a
     discrepancy. The same things vouched for BEFORE the export was taken are discrepancies.
     "After" allows SLACK (1 s) for a transaction still committing when the export began.
     Clocks aside, an envelope is never in flight if the receiver's export records a later
     one (a higher sequence) from the same sender: envelopes are applied in order.
  7. discontinuities (node.ledger.discontinuity): a node that lost the end of its ledger
     and ended it with a signed statement (verified in step 1) explains every finding about
     an envelope it sent before the statement that vouched for more entries than it
     restarted from: such envelopes are listed once each as lost-in-discontinuity.

Finding kinds (stable; `--json` prints them). Discrepancies:
  unverified-export         an export fails `audit verify`; nothing else is checked
  not-linked                a ledger records no link to the other node
  link-role                 the link gives the other node the wrong role (swapped exports?)
  link-key                  the pinned signing key is not the one the other export is signed with
  link-tls                  the link pins no TLS certificate fingerprint
  not-received              sent before the receiver's export, not recorded by the receiver
  not-sent                  recorded as received, never recorded as sent by the sender
                            (forged, replayed, or erased from the sender's ledger)
  envelope-mismatch         both record the message id, with other bytes or signature
  duplicate                 a ledger records the same message twice
  receipt-unknown-referral  a receipt acknowledges a referral (id, body hash, tracking id) that
                            the parent's ledger does not record as sent to the child
  receipt-entry-mismatch    the child's entry at the receipt's entry_index is not that referral
  receipt-unwitnessed       a receipt carries no checkpoint of the child
  bad-witness               a carried checkpoint is not the sender's (signature, origin, format)
  witness-short             a receipt's checkpoint does not cover the entry it names
  witness-mismatch          a carried checkpoint's root differs from the sender's exported tree:
                            the sender rewrote its ledger after signing it
  rolled-back               the sender vouched for n entries before its export was taken, and
                            the export has fewer: the ledger went back in time
  fork-recorded             a ledger records fork evidence against the other node
Not discrepancies (listed apart, exit status 0):
  in-flight                 missing on one side, but sent after that side's export was taken
  export-behind             an entry or checkpoint vouched for after the sender's export was
                            taken lies beyond it: ask for a newer export
  lost-in-discontinuity     sent from a history its sender lost and ended with a signed
                            discontinuity (step 7): explained, "lost in discontinuity <ref>"
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from node.errors import IntegrityError, ValidationError
from node.ledger._reconcile_compare import Comparison
from node.ledger._reconcile_model import (
    CHILD,
    PAIRS,
    PARENT,
    PENDING_KINDS,
    SLACK,
    ExportSummary,
    Finding,
    LineSource,
    Pair,
    Reconciliation,
)
from node.ledger._reconcile_scan import Meter, Scan, peek

__all__ = [
    "PAIRS",
    "PENDING_KINDS",
    "SLACK",
    "ExportSummary",
    "Finding",
    "LineSource",
    "Pair",
    "Reconciliation",
    "reconcile_exports",
]


def reconcile_exports(
    parent: LineSource,
    child: LineSource,
    *,
    trusted_vkey: str | None = None,
    slack: dt.timedelta = SLACK,
    progress: Callable[[int, int | None], None] | None = None,
) -> Reconciliation:
    """Reconcile a parent's export with its child's (module docstring); list every finding.

    `trusted_vkey` is the parent's verifier key as the auditor knows it. An envelope sent
    less than `slack` before an export was taken counts as sent after it (step 6).
    `progress(done, total)` counts entries read over all passes. Raises ValidationError if
    a file is not an export at all or both are of one node, IntegrityError if a file
    changes meanwhile.
    """
    peeked = {PARENT: peek(parent), CHILD: peek(child)}
    if peeked[PARENT][0] and peeked[PARENT][0] == peeked[CHILD][0]:
        raise ValidationError(
            f"expected the exports of a parent and of its child, found two of {peeked[CHILD][0]}"
        )
    meter = Meter(progress, peeked[PARENT][1] + peeked[CHILD][1])
    p = Scan(PARENT, other=peeked[CHILD][0])
    failed = p.run(parent, trusted_vkey, meter)
    if failed is not None:
        return Reconciliation(None, None, (failed,))
    c = Scan(CHILD, other=p.node_id, sizes=p.other_sizes, entries=p.receipt_entries())
    failed = c.run(child, None, meter)
    if failed is not None:
        return Reconciliation(p.summary(), None, (failed,))
    if c.node_id != peeked[CHILD][0]:
        raise IntegrityError("the child export changed while it was being read; run again")
    missing = {s for s in c.other_sizes if s <= p.size} - p.roots.keys()
    if missing:
        p.rescan(parent, missing, meter)
    return Comparison(p, c, slack).run()
