"""The tamper-evident ledger, as pure functions and values: no I/O, no database.

- `node.ledger.merkle`: the RFC 6962 / RFC 9162 tree, its proofs, and appending.
- `node.ledger.checkpoint`: C2SP tlog-checkpoint bodies and the consistency guard.
- `node.ledger.note`: C2SP signed notes with Ed25519, and signed checkpoints.
- `node.ledger.export`: the audit export format and its writer.
- `node.ledger.verify`: offline verification of an export (findings in `node.ledger.findings`).
- `node.ledger.proofs`: inclusion proof documents.
- `node.ledger.reconcile`: a parent's and a child's exports held against each other.
- `node.ledger.trust`: chains of trust from the national node's key (rules in node.crypto.chain).

`node.ledger.audit` re-exports export, verify and proofs under their former single name.
Edge cases of proof verification are decided in docs/decisions/0002-merkle-proof-edge-cases.md.
"""
