"""Cosignatures against an independent C2SP implementation, tlog-scales (PyPI, Apache-2.0):
its Ed25519 cosignature verifier accepts ours, computes the same key IDs, and refuses a
cosignature whose time or checkpoint was changed, as ours does."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tlog_scales.signing import Vkey
from tlog_scales.tlog import Checkpoint as TheirCheckpoint

from node.ledger.checkpoint import Checkpoint
from node.ledger.cosignature import Cosignature, CosignerKey, cosign
from node.ledger.note import Verifier, sign_checkpoint

LOG, WITNESS = (Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32) for n in (41, 42))
ORIGIN = "lapor-node/id-64-02"
NAME = "lapor-node/id-64/witness"
CP = Checkpoint(ORIGIN, 20852163, bytes(range(32)))
T = 1_796_000_000


def _note(line: str, cp: Checkpoint = CP) -> str:
    return (sign_checkpoint(cp, ORIGIN, LOG) + line.encode()).decode()


def test_their_verifier_accepts_our_cosignature_and_key_ids() -> None:
    """tlog-scales parses our vkeys to the same key IDs and verifies our cosigned note."""
    ours = CosignerKey.from_public_key(NAME, WITNESS.public_key())
    log = Verifier.from_public_key(ORIGIN, LOG.public_key())
    vkey = Vkey.from_string(ours.vkey)
    assert vkey.sig_type == 4 and vkey.key_id == int.from_bytes(ours.key_id, "big")
    recomputed = Vkey(NAME, None, 4, WITNESS.public_key().public_bytes_raw())
    assert recomputed.key_id == vkey.key_id
    note = _note(cosign(CP.to_body(), NAME, WITNESS, T).line())
    theirs = TheirCheckpoint.from_text(note)
    theirs.verify(vkey)
    theirs.verify(Vkey.from_string(log.vkey))


@pytest.mark.parametrize("change", ["time", "checkpoint"])
def test_their_verifier_refuses_what_ours_refuses(change: str) -> None:
    """A cosignature with its time changed, or moved to another checkpoint, fails there too."""
    good = cosign(CP.to_body(), NAME, WITNESS, T)
    if change == "time":
        note = _note(Cosignature(good.name, good.key_id, T + 1, good.signature).line())
    else:
        note = _note(good.line(), Checkpoint(ORIGIN, CP.size + 1, CP.root))
    vkey = Vkey.from_string(CosignerKey.from_public_key(NAME, WITNESS.public_key()).vkey)
    with pytest.raises(InvalidSignature):
        TheirCheckpoint.from_text(note).verify(vkey)
