"""The offline audit of a node's ledger, by its former single name: a re-export.

The audit lives in three modules by job: node.ledger.export (the export format and its
writer), node.ledger.verify (verifying an export; findings in node.ledger.findings) and
node.ledger.proofs (inclusion proof documents). This module keeps `node.ledger.audit`
importable for existing callers; new code imports from those modules.
"""

from __future__ import annotations

from node.ledger.export import EXPORT_FORMAT, EXPORT_VERSION, ExportHeader, export_lines, vkey_for
from node.ledger.findings import AuditFailure, Finding
from node.ledger.proofs import PROOF_FORMAT, PROOF_VERSION, check_proof_document, proof_document
from node.ledger.verify import AuditReport, verify_export

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "PROOF_FORMAT",
    "PROOF_VERSION",
    "AuditFailure",
    "AuditReport",
    "ExportHeader",
    "Finding",
    "check_proof_document",
    "export_lines",
    "proof_document",
    "verify_export",
    "vkey_for",
]
