"""The tamper-evident ledger, as pure functions and values: no I/O, no database.

- `node.ledger.merkle`: the RFC 6962 / RFC 9162 tree, its proofs, and appending.
- `node.ledger.checkpoint`: C2SP tlog-checkpoint bodies and the consistency guard.
- `node.ledger.note`: C2SP signed notes with Ed25519, and signed checkpoints.

Edge cases of proof verification are decided in docs/decisions/0002-merkle-proof-edge-cases.md.
"""
