"""Checking the complaint contents a node keeps against the commitments in its ledger.

Content (personal data) lives outside the ledger, beside it, under a commitment
SHA-256(salt || content) that the ledger holds (DESIGN.md, "Ledger"). An export carries no
content, so this check runs on the node itself, by its operator or an inspector on site:

  1. stream the ledger; each `complaint_registered` entry, and each `referral_received`
     entry's signed referral, states the commitment of one complaint;
  2. for that complaint, the content kept (if any) must open the commitment, and the
     complaint row's own copy of the commitment must equal the ledger's;
  3. content that was erased (a `content_erased` entry, or simply absent) is counted, not
     a finding: erasure is allowed and leaves every proof valid.
A finding names the ledger entry whose commitment the stored data no longer matches.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2
from node.services.context import NodeContext
from node.store import queries, tree

__all__ = ["ContentFinding", "ContentReport", "verify_contents"]


@dataclass(frozen=True)
class ContentFinding:
    index: int  # the ledger entry that committed to the content
    tracking_id: str
    kind: str  # content-swapped | commitment-changed
    detail: str


@dataclass
class ContentReport:
    checked: int = 0
    not_kept: int = 0
    findings: list[ContentFinding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def _commitment(entry: ledger_pb2.LedgerEntry) -> tuple[str, bytes] | None:
    kind = entry.WhichOneof("kind")
    if kind == "complaint_registered":
        summary = entry.complaint_registered.complaint
    elif kind == "referral_received":
        body = entry.referral_received.envelope.body
        summary = envelope_pb2.Envelope.FromString(body).referral.complaint
    else:
        return None
    return summary.tracking_id, summary.content_commitment


def verify_contents(
    ctx: NodeContext, progress: Callable[[int], None] | None = None
) -> ContentReport:
    """Check every kept content against the commitment its ledger entry holds."""
    report = ContentReport()
    with ctx.db.read() as session:
        tree.snapshot(session)
        for row in queries.iter_ledger(session):
            if progress is not None and row.idx % 4096 == 0:
                progress(row.idx)
            stated = _commitment(ledger_pb2.LedgerEntry.FromString(row.entry))
            if stated is None:
                continue
            tracking_id, commitment = stated
            complaint = queries.get_complaint(session, tracking_id)
            if complaint is not None and not hmac.compare_digest(
                complaint.content_commitment, commitment
            ):
                report.findings.append(
                    ContentFinding(
                        row.idx,
                        tracking_id,
                        "commitment-changed",
                        "the complaint row's commitment is not the one this ledger entry "
                        "holds: the stored complaint was altered",
                    )
                )
            content = queries.complaint_content(session, tracking_id)
            if content is None:
                report.not_kept += 1
                continue
            report.checked += 1
            actual = hashlib.sha256(content.salt + content.content).digest()
            if not hmac.compare_digest(actual, commitment):
                report.findings.append(
                    ContentFinding(
                        row.idx,
                        tracking_id,
                        "content-swapped",
                        "SHA-256(salt || content) kept on this node is not the commitment in "
                        "this ledger entry: the content (or its salt) was replaced",
                    )
                )
    return report
