"""Key rotation: `lapor-node keys rotate` on the rotating node, and following a peer's
rotation on the other side (docs/decisions/0008-key-rotation.md).

The rotating node, in order:
  1. makes a new Ed25519 signing key and a new TLS key and certificate, and writes them
     beside the current files as `<file>.next` (mode 0600 for private keys);
  2. in ONE transaction: records KeyRotated (the rotation signed by the old and the new
     key, node.crypto.rotation) at index i; signs a checkpoint of size i + 1 with the OLD
     key; queues to every linked peer a key_rotation envelope signed with the old key; and
     makes the new generation current in `own_keys` (the old one retired, its TLS
     certificate presented until `tls_valid_until` = now + grace);
  3. promotes the files: the old signing key is deleted, the old TLS key and certificate
     are kept as `<file>.<key id>.retired` (presented during the grace period), and the
     `.next` files take the configured names.
A crash between 2 and 3 is finished by `settle_files` when the node next opens its keys; a
crash before 2 commits leaves `.next` files that `settle_files` removes. The `own_keys`
row that is not retired is the truth; a process that signs (serve) compares it with its
key in memory inside each signing transaction (`refresh_key`, from
node.services.checkpoints.sign_in), so nothing is signed with a retired key once the
rotation committed, whichever process made it.

Presenting certificates during the grace period (`presented_identities`):
  - as a server (children dial in), the old certificate until the grace period ends, then
    the new one; children that received the rotation pin both meanwhile;
  - as a client (dialing the parent), the old certificate until the parent acknowledged
    the rotation envelope, then the new one. A parent that was offline through the whole
    grace period thus still lets the child in, receives the rotation and re-pins.
  - An old certificate whose own validity has ended is never presented (every handshake
    with it fails): a node that rotates because its certificate expired presents the new
    one at once, and children that pin the old one follow through GetKeyRotations.

The other side (`follow`): a key_rotation envelope from a peer, signed with the key pinned
for it, re-pins the link to the new key and certificate, keeps the old certificate
acceptable until the rotation's `old_tls_valid_until`, and records PeerKeyRotated. A child
that was offline while its parent rotated cannot complete a handshake any more; it fetches
the parent's rotations from the parent's enrollment port (GetKeyRotations: no trust in
the connection is needed, the records are signed) and follows them from the key it pins
(`follow_fetched`); envelopes the parent queued before rotating, still signed with the old
key, are then accepted until the in-band rotation envelope itself arrives
(`PeerKey.in_band_pending`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from sqlalchemy import select
from sqlalchemy.orm import Session

from node._proto.lapor.v1 import ledger_pb2, trust_pb2
from node.config import NodeConfig
from node.crypto.keyfiles import read_file, write_private, write_public
from node.crypto.rotation import follow_rotations, open_rotation, sign_rotation
from node.crypto.signing import SigningKey, VerifyKey
from node.crypto.tls import fingerprint, generate_tls_identity, issued_at, valid_until
from node.envelopes import OpenedEnvelope
from node.errors import IntegrityError, SignatureError, StateError, ValidationError
from node.ids import NodeId
from node.logs import get_logger
from node.services import checkpoints, fence
from node.services._keys import current_key, next_path, refresh_key, retired_path, settle_files
from node.services._ledger import record
from node.services._outbox import enqueue
from node.services.context import NodeContext
from node.store import queries
from node.store.models import Invite, Link, OutboxRow, OwnKey, PeerKey

__all__ = [
    "DEFAULT_GRACE",
    "Generation",
    "Identity",
    "Rotated",
    "current_identity",
    "current_key",
    "discontinue",
    "follow",
    "follow_fetched",
    "follow_in_band",
    "generations",
    "own_rotations",
    "own_rotations_of",
    "parse_grace",
    "peer_keys",
    "presented_identities",
    "rotate",
    "verify_key_for",
]

log = get_logger()

DEFAULT_GRACE = dt.timedelta(hours=72)
MAX_GRACE = dt.timedelta(days=90)


# --- this node's generations -------------------------------------------------------------


@dataclass(frozen=True)
class Generation:
    """One generation of this node's keys, for `keys show`. The first generation was
    activated when `init` made its certificate."""

    signing_key: bytes
    tls_fingerprint: bytes
    activated_at: dt.datetime
    rotation_entry: int | None
    retired_at: dt.datetime | None
    tls_accepted_until: dt.datetime | None  # a retired certificate: the grace period's end
    tls_valid_until: dt.datetime  # the certificate's own end of validity (notAfter)


def _rows(session: Session) -> list[OwnKey]:
    return list(session.scalars(select(OwnKey).order_by(OwnKey.id)))


def _ensure_first(session: Session, ctx: NodeContext) -> list[OwnKey]:
    """The generations, starting the table from the key files if it is empty (a node made
    before key rotation existed has used one generation so far)."""
    rows = _rows(session)
    if not rows:
        cert = read_file(ctx.config.tls_cert, "TLS certificate")
        first = OwnKey(
            signing_key=ctx.signing_key.public.raw,
            tls_cert_pem=cert.decode(),
            tls_fingerprint=fingerprint(cert),
            activated_at=issued_at(cert),
        )
        queries.add(session, first, flush=True)
        rows = [first]
    return rows


def generations(ctx: NodeContext) -> list[Generation]:
    with ctx.db.read() as session:
        rows = _rows(session)
    if not rows:
        cert = read_file(ctx.config.tls_cert, "TLS certificate")
        return [
            Generation(
                ctx.signing_key.public.raw,
                fingerprint(cert),
                issued_at(cert),
                None,
                None,
                None,
                valid_until(cert),
            )
        ]
    return [
        Generation(
            r.signing_key,
            r.tls_fingerprint,
            r.activated_at,
            r.rotation_entry,
            r.retired_at,
            r.tls_valid_until,
            valid_until(r.tls_cert_pem.encode()),
        )
        for r in rows
    ]


def own_rotations(session: Session) -> list[trust_pb2.SignedKeyRotation]:
    """This node's rotations, oldest first, as recorded in its ledger."""
    rotations: list[trust_pb2.SignedKeyRotation] = []
    for row in _rows(session):
        if row.rotation_entry is None:
            continue
        rows = list(queries.iter_ledger(session, row.rotation_entry, row.rotation_entry + 1))
        entry = ledger_pb2.LedgerEntry.FromString(rows[0].entry)
        if entry.WhichOneof("kind") == "history_discontinued":  # a recovery (ADR 0023)
            rotations.append(entry.history_discontinued.rotation)
        else:
            rotations.append(entry.key_rotated.rotation)
    return rotations


def own_rotations_of(ctx: NodeContext) -> list[trust_pb2.SignedKeyRotation]:
    with ctx.db.read() as session:
        return own_rotations(session)


# --- rotating ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rotated:
    """What `keys rotate` did."""

    old_key: bytes
    new_key: bytes
    new_tls_fingerprint: bytes
    ledger_index: int
    peers: tuple[str, ...]
    old_tls_valid_until: dt.datetime
    open_invites: int
    new_tls_valid_until: dt.datetime  # the new certificate's own end (notAfter)


def parse_grace(value: dt.timedelta) -> dt.timedelta:
    if value < dt.timedelta(0) or value > MAX_GRACE:
        raise ValidationError(
            f"the grace period must be between 0 and {MAX_GRACE.days} days, found {value}"
        )
    return value


def rotate(ctx: NodeContext, grace: dt.timedelta = DEFAULT_GRACE) -> Rotated:
    """Replace this node's signing key and TLS certificate (see the module docstring)."""
    return _rotate(ctx, grace, None)


def discontinue(
    ctx: NodeContext, statement: trust_pb2.Discontinuity, grace: dt.timedelta = DEFAULT_GRACE
) -> Rotated:
    """The recovery path's rotation (node.services.recovery, ADR 0023): like `rotate`, but
    the rotation carries `statement` and is recorded as HistoryDiscontinued; the first
    checkpoint after it (size i + 1) is the NEW key's, so the old key signs nothing of the
    history that follows; the fence is replaced by that checkpoint at commit. The old
    signing key is kept as a retired file: it signs only the rotation envelopes, which a
    peer ahead of this node's restored sequences needs renumbered (`resequence`)."""
    return _rotate(ctx, grace, statement)


def _rotate(
    ctx: NodeContext, grace: dt.timedelta, statement: trust_pb2.Discontinuity | None
) -> Rotated:
    grace = parse_grace(grace)
    cfg = ctx.config
    for path in (cfg.signing_key, cfg.tls_key, cfg.tls_cert):
        if next_path(path).exists():
            raise StateError(
                f"{next_path(path)} exists: an earlier `keys rotate` did not finish. Start the "
                "node once (or run `lapor-node keys show`) to settle it, then rotate again"
            )
    now = ctx.clock.now()
    new_key = SigningKey.generate()
    tls = generate_tls_identity(ctx.node_id, now)
    write_private(next_path(cfg.signing_key), new_key.to_pem())
    write_private(next_path(cfg.tls_key), tls.key_pem)
    write_public(next_path(cfg.tls_cert), tls.cert_pem)
    old = ctx.signing_key
    try:
        with ctx.db.write() as session:
            rotated = _rotate_in(session, ctx, new_key, tls.cert_pem, now, grace, statement)
    except BaseException:
        for path in (cfg.signing_key, cfg.tls_key, cfg.tls_cert):
            next_path(path).unlink(missing_ok=True)
        ctx.signing_key = old
        raise
    if statement is not None:
        write_private(retired_path(cfg.signing_key, old.public.raw), old.to_pem())
    settle_files(cfg, new_key.public.raw)
    ctx.signing_key = new_key
    return rotated


def _rotate_in(
    session: Session,
    ctx: NodeContext,
    new_key: SigningKey,
    cert_pem: bytes,
    now: dt.datetime,
    grace: dt.timedelta,
    statement: trust_pb2.Discontinuity | None = None,
) -> Rotated:
    rows = _ensure_first(session, ctx)
    refresh_key(session, ctx)
    current = rows[-1]
    if current.retired_at is not None or current.signing_key != ctx.signing_key.public.raw:
        raise IntegrityError("this node's key history does not end at its current key")
    old = ctx.signing_key
    until = now + grace
    signed = sign_rotation(
        old,
        new_key,
        node_id=ctx.node_id,
        new_tls_cert_pem=cert_pem,
        rotated_at=now,
        old_tls_valid_until=until,
        discontinuity=statement,
    )
    if statement is None:
        index = record(
            session,
            ctx,
            ledger_pb2.LedgerEntry(key_rotated=ledger_pb2.KeyRotated(rotation=signed)),
        )
        # Still the old key: the checkpoint of size i + 1 and the rotation envelopes.
        note = checkpoints.sign_in(session, ctx)[0].note
    else:
        index = record(
            session,
            ctx,
            ledger_pb2.LedgerEntry(
                history_discontinued=ledger_pb2.HistoryDiscontinued(rotation=signed)
            ),
        )
        if index != statement.restart_size:
            raise IntegrityError(
                f"expected the discontinuity at index {statement.restart_size}, found the "
                f"ledger at size {index}"
            )
        # The new key signs the checkpoint of size i + 1 (ADR 0023); the fence is replaced
        # by it at commit. The envelopes are still the old key's: peers pin it.
        fence.restart_at_commit(session, ctx.config, index, statement.restart_root)
        ctx.signing_key = new_key
        _switch_generation(session, rows[-1], new_key, cert_pem, now, until, index)
        note = checkpoints.sign_in(session, ctx)[0].note
        ctx.signing_key = old
    peers: list[str] = []
    for link in sorted(queries.list_links(session, active_only=True), key=lambda row: row.peer_id):
        locked = queries.get_link(session, link.peer_id, lock=True)
        assert locked is not None
        enqueue(session, ctx, locked, tracking_id=None, checkpoint=note, key_rotation=signed)
        peers.append(link.peer_id)
    if statement is None:
        _switch_generation(session, current, new_key, cert_pem, now, until, index)
    open_invites = len(
        session.scalars(
            select(Invite.invite_id).where(
                Invite.state.in_(("open", "pending", "approved")), Invite.expires_at > now
            )
        ).all()
    )
    return Rotated(
        old.public.raw,
        new_key.public.raw,
        fingerprint(cert_pem),
        index,
        tuple(peers),
        until,
        open_invites,
        valid_until(cert_pem),
    )


def _switch_generation(
    session: Session,
    current: OwnKey,
    new_key: SigningKey,
    cert_pem: bytes,
    now: dt.datetime,
    until: dt.datetime,
    index: int,
) -> None:
    current.retired_at = now
    current.tls_valid_until = until
    queries.add(
        session,
        OwnKey(
            signing_key=new_key.public.raw,
            tls_cert_pem=cert_pem.decode(),
            tls_fingerprint=fingerprint(cert_pem),
            activated_at=now,
            rotation_entry=index,
        ),
        flush=True,
    )


# --- which certificate to present ---------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """A TLS key and certificate (PEM) to present."""

    key_pem: bytes
    cert_pem: bytes


def _identity_of(config: NodeConfig, row: OwnKey | None) -> Identity:
    """The files of generation `row` (None or the current one: the configured files)."""
    if row is None or row.retired_at is None:
        return Identity(
            read_file(config.tls_key, "TLS key"), read_file(config.tls_cert, "TLS certificate")
        )
    return Identity(
        read_file(retired_path(config.tls_key, row.signing_key), "retired TLS key"),
        read_file(retired_path(config.tls_cert, row.signing_key), "retired TLS certificate"),
    )


def current_identity(config: NodeConfig) -> Identity:
    """The configured TLS key and certificate: the current generation's."""
    return _identity_of(config, None)


def presented_identities(ctx: NodeContext, parent: str | None) -> tuple[Identity, Identity]:
    """(as a server, as a client to `parent`): see the module docstring."""
    now = ctx.clock.now()
    with ctx.db.read() as session:
        rows = _rows(session)
        server: OwnKey | None = None
        for row in rows:
            if _still_presented(row, now):
                server = row
                break
        client: OwnKey | None = None
        if parent is not None and len(rows) > 1:
            first_unacked = session.scalar(
                select(OutboxRow)
                .where(queries.unacknowledged(parent), OutboxRow.kind == "key_rotation")
                .order_by(OutboxRow.sequence)
                .limit(1)
            )
            if first_unacked is not None:
                client = _generation_before(session, rows, first_unacked)
                if not _valid_at(client, now):
                    client = None
    return _identity_of(ctx.config, server), _identity_of(ctx.config, client)


def _valid_at(row: OwnKey, now: dt.datetime) -> bool:
    return now < valid_until(row.tls_cert_pem.encode())


def _still_presented(row: OwnKey, now: dt.datetime) -> bool:
    """A retired certificate is presented during its grace period, unless it has ended: an
    expired certificate fails every handshake, so the current one is presented instead."""
    return (
        row.retired_at is not None
        and row.tls_valid_until is not None
        and row.tls_valid_until > now
        and _valid_at(row, now)
    )


def _generation_before(session: Session, rows: Sequence[OwnKey], outbox: OutboxRow) -> OwnKey:
    """The generation whose key signed rotation envelope `outbox` (its old key)."""
    by_key = {hashlib.sha256(row.signing_key).digest(): row for row in rows}
    row = by_key.get(outbox.key_id)
    if row is None:  # pragma: no cover - every rotation envelope is signed by a generation
        raise IntegrityError("a queued key rotation is signed by a key this node never had")
    return row


# --- the other side: following a peer's rotation --------------------------------------------


def follow(
    session: Session,
    ctx: NodeContext,
    link: Link,
    signed: trust_pb2.SignedKeyRotation,
    *,
    in_band: bool,
) -> int | None:
    """Follow `link`'s peer from the key pinned for it to the rotation's new key.

    Returns the index of the PeerKeyRotated entry, or None if this rotation was already
    followed (fetched before its envelope arrived: the old key stops signing in-band
    envelopes now). Raises SignatureError for a rotation from a key never pinned for it."""
    rotation = open_rotation(signed)
    if rotation.node_id != link.peer_id:
        raise ValidationError(
            f"{link.peer_id} sent a key rotation of {rotation.node_id}; a node rotates only "
            "its own keys"
        )
    if rotation.old_signing_key != link.signing_key:
        earlier = session.get(PeerKey, (link.peer_id, rotation.old_signing_key))
        if earlier is None:
            raise SignatureError(
                f"the key rotation of {link.peer_id} starts from a key this node never pinned "
                "for it; it is refused"
            )
        if in_band:
            earlier.in_band_pending = False
        return None
    now = ctx.clock.now()
    index = record(
        session,
        ctx,
        ledger_pb2.LedgerEntry(peer_key_rotated=ledger_pb2.PeerKeyRotated(rotation=signed)),
    )
    queries.add(
        session,
        PeerKey(
            peer_id=link.peer_id,
            signing_key=link.signing_key,
            tls_cert_pem=link.tls_cert_pem,
            tls_fingerprint=link.tls_fingerprint,
            replaced_at=now,
            tls_valid_until=rotation.old_tls_valid_until.ToDatetime(tzinfo=dt.UTC),
            in_band_pending=not in_band,
            ledger_index=index,
        ),
    )
    link.signing_key = rotation.new_signing_key
    link.tls_cert_pem = rotation.new_tls_cert_pem
    link.tls_fingerprint = rotation.new_tls_cert_sha256
    return index


def follow_fetched(
    ctx: NodeContext, peer: NodeId, chain: Sequence[trust_pb2.SignedKeyRotation]
) -> list[int]:
    """Follow the rotations fetched from `peer` (GetKeyRotations) that lead on from the key
    pinned for it; returns the PeerKeyRotated entries recorded (none if already current)."""
    with ctx.db.write() as session:
        link = queries.get_link(session, peer, lock=True)
        if link is None or link.revoked_at is not None:
            raise StateError(f"{peer} is not linked to this node")
        indexes: list[int] = []
        by_body = {signed.rotation: signed for signed in chain}
        for rotation in follow_rotations(link.signing_key, peer, chain):
            signed = by_body[rotation.SerializeToString()]
            index = follow(session, ctx, link, signed, in_band=False)
            if index is not None:
                indexes.append(index)
        return indexes


def peer_keys(session: Session, peer: str) -> list[PeerKey]:
    """The keys `peer` used before its current one, oldest first."""
    return list(
        session.scalars(
            select(PeerKey).where(PeerKey.peer_id == peer).order_by(PeerKey.replaced_at)
        )
    )


def verify_key_for(session: Session, link: Link, key_id: bytes) -> VerifyKey | None:
    """The key of `link`'s peer with id `key_id` that may still sign in-band envelopes:
    its current key, or an earlier one whose rotation envelope has not arrived yet."""
    current = VerifyKey(link.signing_key)
    if current.key_id == key_id:
        return current
    for row in peer_keys(session, link.peer_id):
        key = VerifyKey(row.signing_key)
        if row.in_band_pending and key.key_id == key_id:
            return key
    return None


def follow_in_band(
    session: Session, ctx: NodeContext, link: Link, opened: OpenedEnvelope, key: VerifyKey
) -> None:
    """The peer's key_rotation envelope (exchange's per-envelope path), opened under `key`:
    it must be signed with the key it rotates from; follow it (re-pin), or note that a
    rotation fetched earlier has now arrived."""
    signed = opened.envelope.key_rotation
    try:
        old_key = trust_pb2.KeyRotation.FromString(signed.rotation).old_signing_key
    except DecodeError as e:
        raise ValidationError(
            f"{link.peer_id}'s key rotation does not parse as a KeyRotation; nothing of it "
            "was stored"
        ) from e
    if old_key != key.raw:
        raise SignatureError(
            f"{link.peer_id}'s key rotation must come in an envelope signed with the key it "
            "rotates from"
        )
    index = follow(session, ctx, link, signed, in_band=True)
    log.info("peer.key_rotated", peer=link.peer_id, entry=index, already_followed=index is None)
