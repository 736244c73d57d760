"""What an offline audit of one export can find: a Finding, raised inside an AuditFailure.

Invariants: a Finding names one fault, the first one in the export's order, by a stable
kind (docs/auditor-guide.md lists them; `audit verify --json` prints them) and where: the
first entry index at fault, or the size of the checkpoint at fault, or neither (header,
trailer). Details say what was expected and what was found; they never carry an entry's
contents.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.errors import IntegrityError

__all__ = ["AuditFailure", "Finding", "fail"]


@dataclass(frozen=True)
class Finding:
    """What is wrong with an export: a kind (docs/auditor-guide.md), where, and the detail."""

    kind: str
    detail: str
    index: int | None = None
    checkpoint_size: int | None = None

    def __str__(self) -> str:
        where = "export"
        if self.index is not None:
            where = f"entry {self.index}"
        elif self.checkpoint_size is not None:
            where = f"checkpoint at size {self.checkpoint_size}"
        return f"{where}: {self.kind}: {self.detail}"


class AuditFailure(IntegrityError):
    """An export does not verify; `finding` names the first fault. The cause, if any, is
    the underlying SignatureError, ProofError or ValidationError."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(str(finding))
        self.finding = finding


def fail(
    kind: str, detail: str, *, index: int | None = None, checkpoint_size: int | None = None
) -> AuditFailure:
    """The AuditFailure of one finding, for the caller to raise."""
    return AuditFailure(Finding(kind, detail, index, checkpoint_size))
