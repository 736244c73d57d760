"""C2SP witnessing (decision 0026), both sides.

The witness side (c2sp.org/tlog-witness, "add-checkpoint"), `add_checkpoint`, in one write
transaction so the old-size check and the store of the new head are atomic:
  1. the checkpoint's origin names a log this node witnesses: a linked peer's
     (`lapor-node/<peer>`, with the peer's current and earlier signing keys) or one listed
     under witness.logs; else NotFoundError (404);
  2. the note verifies under one of that log's keys; else SignatureError (403);
  3. the old size is at most the checkpoint's size; else ValidationError (400);
  4. the old size equals the size of the latest checkpoint cosigned for the origin (0 if
     none); else WitnessConflict carrying that size (409);
  5. at equal sizes the roots are equal (else WitnessConflict, 409); otherwise the
     consistency proof joins the held root to the new one (RFC 6962 2.1.2; empty from
     size 0); else ProofError (422), logged as possible evidence of misbehaviour;
  6. cosign (tlog-cosignature v1, this node's cosigner key and the clock's time), store
     the new head, and return the cosignature line.
This is beside, not instead of, the in-band witnessing of node.services.witness. Asked
inside a link (node.federation.cosign_link, decision 0032), the same steps run for that
peer's log only, and the cosignature is made with this node's signing key under its link
cosigner name `lapor-node/<node_id>/link-witness`; the head held per origin is the same
whoever asked, so neither key ever cosigns two inconsistent checkpoints.

The log side, `submit` (one round of the periodic job): for each witness in
witness.submit_to, offer the latest signed checkpoint with a proof from the size that
witness last cosigned (a 409 names the size it holds: one retry from there), verify the
cosignature it returns under its configured key, and store it. `offer` builds a request
and `take_answer` reads its answer; the link's exchange (decision 0032) uses the same two
with the peer's link cosigner key, so an answer is checked and stored one way whatever
carried it. `cosigned_checkpoint` is the latest checkpoint with the stored cosignatures
appended, as C2SP clients read it.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

from node.config.model import WitnessTarget
from node.crypto.keyfiles import read_file, write_private
from node.crypto.signing import SigningKey
from node.errors import (
    ConfigError,
    NodeError,
    NotFoundError,
    ProofError,
    StateError,
    ValidationError,
)
from node.ids import NodeId, parse_node_id
from node.ledger.checkpoint import ORIGIN_PREFIX, Checkpoint, origin_for
from node.ledger.cosignature import CosignerKey, cosign, find_cosignature, parse_vkey
from node.ledger.merkle import verify_consistency
from node.ledger.note import Verifier, open_checkpoint, split_note
from node.ledger.note import parse_vkey as parse_note_vkey
from node.logs import get_logger
from node.services.context import NodeContext
from node.store import tree, witnessed

__all__ = [
    "Offer",
    "Poster",
    "SubmitResult",
    "WitnessConflict",
    "add_checkpoint",
    "cosigned_checkpoint",
    "cosigner",
    "cosigner_key",
    "cosigner_name",
    "link_cosigner_key",
    "link_cosigner_name",
    "log_keys",
    "offer",
    "peer_offer",
    "post",
    "submit",
    "submit_body",
    "take_answer",
    "with_cosignatures",
]

_log = get_logger()

SIZE_CONTENT_TYPE = "text/x.tlog.size"


class WitnessConflict(StateError):
    """The old size does not match the head this witness holds (tlog-witness 409)."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


# --- this node as a witness ----------------------------------------------------------------


def cosigner_name(ctx: NodeContext) -> str:
    """This node's cosigner name: `lapor-node/<node_id>/witness` (decision 0026)."""
    return origin_for(ctx.node_id) + "/witness"


def _key_path(ctx: NodeContext) -> Path:
    path = ctx.config.witness.key
    return path if path is not None else ctx.config.base_dir / "keys" / "witness.pem"


def cosigner(ctx: NodeContext) -> Ed25519PrivateKey:
    """This node's Ed25519 cosigner key, made now (mode 0600) if it has none yet."""
    path = _key_path(ctx)
    if not path.exists():
        try:
            write_private(path, SigningKey.generate().to_pem())
        except ConfigError:  # another process made it first: read that one
            if not path.exists():
                raise
    return SigningKey.from_pem(read_file(path, "witness cosigner key")).ed25519


def cosigner_key(ctx: NodeContext) -> CosignerKey:
    """The public side: what a log or an auditor lists as this witness (its vkey)."""
    return CosignerKey.from_public_key(cosigner_name(ctx), cosigner(ctx).public_key())


def link_cosigner_name(node_id: str) -> str:
    """The name node `node_id` cosigns its linked peers' checkpoints under, with its signing
    key: `lapor-node/<node_id>/link-witness` (decision 0032)."""
    return origin_for(node_id) + "/link-witness"


def link_cosigner_key(node_id: str, signing_key: bytes) -> CosignerKey:
    """Node `node_id`'s link cosigner, from its 32-byte Ed25519 signing public key: what a
    peer verifies its cosignatures with, and an auditor lists in a witness policy."""
    return CosignerKey.from_public_key(link_cosigner_name(node_id), signing_key)


def log_keys(session: Session, ctx: NodeContext, origin: str) -> list[Verifier]:
    """Step 1: the note keys of the log `origin` if this node witnesses it, else []."""
    keys = [parse_note_vkey(log.vkey) for log in ctx.config.witness.logs if log.origin == origin]
    if keys or not ctx.config.witness.witness_peers or not origin.startswith(ORIGIN_PREFIX):
        return keys
    try:
        peer = parse_node_id(origin[len(ORIGIN_PREFIX) :])
    except ValidationError:
        return []
    if peer == ctx.node_id:
        return []
    return [
        Verifier.from_public_key(origin, key) for key in witnessed.peer_signing_keys(session, peer)
    ]


def add_checkpoint(
    ctx: NodeContext,
    old_size: int,
    proof: Sequence[bytes],
    note: bytes,
    *,
    peer: NodeId | None = None,
) -> str:
    """Witness one checkpoint (steps 1-6 above); return the cosignature line. With `peer`
    (asked inside that peer's link), only that peer's log, cosigned as the link cosigner."""
    with ctx.db.write() as session:
        return add_checkpoint_in(session, ctx, old_size, proof, note, peer=peer)


def add_checkpoint_in(
    session: Session,
    ctx: NodeContext,
    old_size: int,
    proof: Sequence[bytes],
    note: bytes,
    *,
    peer: NodeId | None = None,
) -> str:
    """`add_checkpoint` inside the caller's write transaction."""
    text, _ = split_note(note)
    origin = Checkpoint.parse(text).origin
    # 1. A log this node witnesses (inside a link: that peer's, and only it).
    if peer is not None and origin != origin_for(peer):
        raise NotFoundError(f"expected the log of {peer} on its link, found {origin!r}")
    keys = log_keys(session, ctx, origin)
    if not keys:
        raise NotFoundError(f"expected the origin of a log this node witnesses, found {origin!r}")
    # 2. Signed by it.
    cp = open_checkpoint(note, keys)
    # 3. The old size is not beyond the new one.
    if old_size > cp.size:
        raise ValidationError(f"expected an old size of at most {cp.size}, found {old_size}")
    # 4. The old size is the one held.
    held = witnessed.held_for_update(session, origin)
    held_size = 0 if held is None else held.size
    if old_size != held_size:
        raise WitnessConflict(
            f"expected old size {held_size} for {origin}, found {old_size}", held_size
        )
    # 5. Consistent with the held head.
    if held is not None and cp.size == held.size:
        if cp.root != held.root:
            _log.warning("witness.fork", origin=origin, size=cp.size)
            raise WitnessConflict(
                f"expected root {held.root.hex()} for {origin} at size {cp.size}, "
                "found another: two checkpoints of one size",
                held_size,
            )
        if proof:
            raise ProofError(f"expected no proof between equal sizes, found {len(proof)}")
    elif held is None:
        if proof:
            raise ProofError(f"expected no proof from old size 0, found {len(proof)} hashes")
    else:
        try:
            verify_consistency(held.size, cp.size, held.root, cp.root, proof)
        except ProofError:
            _log.warning("witness.inconsistent", origin=origin, old=held.size, new=cp.size)
            raise
    # 6. Cosign and hold.
    now = ctx.clock.now()
    if peer is None:
        name, private = cosigner_name(ctx), cosigner(ctx)
    else:
        name, private = link_cosigner_name(ctx.node_id), ctx.signing_key.ed25519
    line = cosign(text, name, private, int(now.timestamp())).line()
    witnessed.store_held(session, origin, cp.size, cp.root, note, now)
    _log.info("witness.cosigned", origin=origin, size=cp.size, cosigner=name)
    return line


# --- this node's log, cosigned by others -----------------------------------------------------


def cosigned_checkpoint(source: Session | NodeContext) -> bytes | None:
    """The latest checkpoint note with every stored cosignature on it (None: none signed),
    read in the caller's session or, given the node's context, in a snapshot of its own."""
    if isinstance(source, NodeContext):
        with source.db.read() as session:
            return cosigned_checkpoint(session)
    session = source
    row = tree.latest_checkpoint(session)
    if row is None:
        return None
    lines = witnessed.cosignature_lines(session, row.size)
    return row.note + "".join(lines).encode("utf-8")


def with_cosignatures(
    session: Session, checkpoints: Iterable[tuple[int, bytes]]
) -> Iterator[tuple[int, bytes]]:
    """(size, note) of `checkpoints` (in size order) with their stored cosignatures
    appended, for the audit export: a note verifier ignores the extra lines, so `audit
    verify` reads them as before. Streams both sides; memory stays bounded."""
    lines = witnessed.iter_cosignature_lines(session)
    pending = next(lines, None)
    for size, note in checkpoints:
        extra: list[str] = []
        while pending is not None and pending[0] <= size:
            if pending[0] == size:
                extra.append(pending[1])
            pending = next(lines, None)
        yield size, note + "".join(extra).encode("utf-8")


Poster = Callable[[str, bytes, float], tuple[int, str, bytes]]
"""POST body to a URL with a timeout; return (status, content type, body)."""


def post(url: str, body: bytes, timeout: float) -> tuple[int, str, bytes]:
    """The Poster over HTTP(S) (urllib; certificates checked against the system's CAs)."""
    if not url.startswith(("http://", "https://")):
        raise ValidationError(f"expected an http(s) witness URL, found {url[:64]!r}")
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 - checked above
    request.add_header("Content-Type", "text/plain; charset=utf-8")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - checked above
            return response.status, response.headers.get("Content-Type", ""), response.read(1 << 16)
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read(1 << 16)


@dataclass(frozen=True)
class SubmitResult:
    """What one witness said about one checkpoint."""

    witness: str
    size: int
    status: int
    cosigned: bool
    detail: str = ""


def submit_body(old_size: int, proof: Sequence[bytes], note: bytes) -> bytes:
    """The add-checkpoint request body: `old N`, proof lines, a blank line, the note."""
    lines = [f"old {old_size}\n"] + [base64.b64encode(h).decode("ascii") + "\n" for h in proof]
    return "".join(lines).encode("ascii") + b"\n" + note


def submit(ctx: NodeContext, poster: Poster = post) -> list[SubmitResult]:
    """Offer the latest signed checkpoint to every witness.submit_to witness; store the
    cosignatures that verify. Network failures are results, not exceptions."""
    results: list[SubmitResult] = []
    for target in ctx.config.witness.submit_to:
        try:
            results.append(_submit_one(ctx, target, poster))
        except (NodeError, OSError) as e:
            results.append(SubmitResult(target.name, 0, 0, False, f"{type(e).__name__}: {e}"))
    return results


@dataclass(frozen=True)
class Offer:
    """One add-checkpoint request to one witness: this node's checkpoint of `size` (its
    signed `note`), from the size `old` the witness is taken to hold, as a request `body`."""

    witness: str  # the name results and logs give it
    key: CosignerKey
    size: int
    note: bytes
    old: int
    body: bytes


def offer(
    ctx: NodeContext, witness: str, key: CosignerKey, old: int | None = None
) -> Offer | SubmitResult:
    """The request to make to the witness `key` now: the latest signed checkpoint, from the
    size it last cosigned (or from `old`, a size it said it holds), with the consistency
    proof; or, if there is nothing to ask, the result that says why."""
    with ctx.db.read() as session:
        return _offer_in(session, witness, key, old)


def _offer_in(
    session: Session, witness: str, key: CosignerKey, old: int | None
) -> Offer | SubmitResult:
    row = tree.latest_checkpoint(session)
    if row is None:
        return SubmitResult(witness, 0, 0, False, "no checkpoint signed yet")
    size, note = row.size, row.note
    if old is None:
        old = witnessed.witness_size(session, key.name)
        if old == size:
            return SubmitResult(witness, size, 200, True, "already cosigned")
    proof = tree.consistency_proof(session, old, size) if 0 < old < size else []
    return Offer(witness, key, size, note, old, submit_body(old, proof, note))


def peer_offer(ctx: NodeContext, peer: NodeId) -> Offer | SubmitResult | None:
    """`offer` to a linked, unrevoked peer under its link cosigner key (derived from the
    signing key pinned for it), both read in one transaction: one trip to a reader thread,
    not two (decision 0043: each of 1,200 links makes one at its Hello); None if the peer
    is not linked."""
    with ctx.db.read() as session:
        keys = witnessed.peer_signing_keys(session, peer)
        if not keys:
            return None
        return _offer_in(session, peer, link_cosigner_key(peer, keys[0]), None)


def take_answer(
    ctx: NodeContext, asked: Offer, status: int, content_type: str, body: bytes
) -> SubmitResult | Offer:
    """Read the witness's answer to `asked`: on 200, verify its cosignature under the
    witness's key and store it (SignatureError if it does not verify: nothing stored); on
    a 409 naming a size we can prove from, the request to make next; else the result."""
    if status == 409 and content_type.startswith(SIZE_CONTENT_TYPE):
        held = _size_of(body)
        if held is None or held == asked.old or held > asked.size:
            return SubmitResult(
                asked.witness, asked.size, status, False, f"witness holds size {held!r}"
            )
        # It holds a size we did not record: offer the proof from there.
        return offer(ctx, asked.witness, asked.key, held)
    if status != 200:
        detail = body[:200].decode("utf-8", "replace").strip()
        return SubmitResult(asked.witness, asked.size, status, False, detail)
    cosignature = find_cosignature(asked.note + body, asked.key)
    with ctx.db.write() as session:
        witnessed.add_cosignature(
            session,
            asked.size,
            asked.key.name,
            cosignature.timestamp,
            cosignature.line(),
            ctx.clock.now(),
        )
    return SubmitResult(asked.witness, asked.size, status, True)


def _submit_one(ctx: NodeContext, target: WitnessTarget, poster: Poster) -> SubmitResult:
    asked = offer(ctx, target.name, parse_vkey(target.vkey))
    url = target.url.rstrip("/") + "/add-checkpoint"
    timeout = ctx.config.witness.timeout_seconds
    for _attempt in range(2):
        if isinstance(asked, SubmitResult):
            return asked
        status, content_type, body = poster(url, asked.body, timeout)
        answered = take_answer(ctx, asked, status, content_type, body)
        if isinstance(answered, SubmitResult):
            return answered
        size, asked = asked.size, answered
    return SubmitResult(target.name, size, 409, False, "witness moved during the round")


def _size_of(body: bytes) -> int | None:
    text = body.decode("ascii", "replace")
    if not text.endswith("\n") or not text[:-1].isdigit() or len(text) > 21:
        return None
    return int(text[:-1])
