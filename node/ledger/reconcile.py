"""Reconciling a parent's and a child's audit exports: does each ledger record the envelopes
between the two nodes exactly as the other does?

Pure: lines in, a report out; no database, no network, no files. An export is given as a
`LineSource`, a callable that yields its lines afresh, because it is read more than once:
its first line is peeked (node id, size); then it is verified and read in ONE pass (each
line `verify_export` has checked is read again by a collector); and the parent's is scanned
once more only if the child holds a checkpoint of the parent at a size that the parent's
export has no checkpoint of. Memory grows with the envelopes between the two nodes only:
per envelope its ids, hashes and time, never an entry; per tree only the frontier.

Steps, each run to the end so that EVERY discrepancy is listed:
  1. each export verifies on its own (node.ledger.audit.verify_export), the parent's under
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
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from google.protobuf.message import DecodeError

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2, trust_pb2
from node.crypto.signing import VerifyKey
from node.errors import IntegrityError, NodeError, ValidationError
from node.ledger.audit import (
    EXPORT_FORMAT,
    EXPORT_VERSION,
    AuditFailure,
    AuditReport,
    verify_export,
)
from node.ledger.checkpoint import origin_for
from node.ledger.merkle import EMPTY_ROOT, Frontier, leaf_hash
from node.ledger.note import Verifier, open_checkpoint

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

LineSource = Callable[[], Iterable[str | bytes]]
"""Yields an export's lines from the start each time it is called."""

PARENT, CHILD = "parent", "child"
PENDING_KINDS = frozenset({"in-flight", "export-behind"})
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

_BY_KIND = {
    kind: (pair, is_sent)
    for pair in PAIRS
    for kind, is_sent in ((pair.sent, True), (pair.received, False))
    if kind is not None
}
_PAIR_OF = {pair.payload: pair for pair in PAIRS}
_RECEIPT = "receipt"
_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)
_FORKS: dict[int, str] = {
    ledger_pb2.FORK_KIND_SAME_SIZE: "two of the same size",
    ledger_pb2.FORK_KIND_INCONSISTENT: "not consistent with each other",
    ledger_pb2.FORK_KIND_ROLLBACK: "a rollback",
}
_ROLES: dict[int, str] = {ledger_pb2.PEER_ROLE_PARENT: PARENT, ledger_pb2.PEER_ROLE_CHILD: CHILD}


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
    peeked = {PARENT: _peek(parent), CHILD: _peek(child)}
    if peeked[PARENT][0] and peeked[PARENT][0] == peeked[CHILD][0]:
        raise ValidationError(
            f"expected the exports of a parent and of its child, found two of {peeked[CHILD][0]}"
        )
    meter = _Meter(progress, peeked[PARENT][1] + peeked[CHILD][1])
    p = _Scan(PARENT, other=peeked[CHILD][0])
    failed = p.run(parent, trusted_vkey, meter)
    if failed is not None:
        return Reconciliation(None, None, (failed,))
    c = _Scan(CHILD, other=p.node_id, sizes=p.other_sizes, entries=p.receipt_entries())
    failed = c.run(child, None, meter)
    if failed is not None:
        return Reconciliation(p.summary(), None, (failed,))
    if c.node_id != peeked[CHILD][0]:
        raise IntegrityError("the child export changed while it was being read; run again")
    missing = {s for s in c.other_sizes if s <= p.size} - p.roots.keys()
    if missing:
        p.rescan(parent, missing, meter)
    return _Comparison(p, c, slack).run()


# --- reading one export -----------------------------------------------------------------


class _Cp(NamedTuple):
    size: int
    root: bytes


class _Env(NamedTuple):
    """What is kept of one envelope recorded in a ledger."""

    payload: str
    message_id: str
    idx: int  # the entry's index in this ledger
    tracking_id: str
    sent_at: dt.datetime
    body_sha256: bytes
    signature: bytes
    sequence: int = 0  # per link and direction (Envelope.sequence)


class _Receipt(NamedTuple):
    env: _Env
    referral_message_id: str
    referral_body_sha256: bytes
    entry_index: int
    carried: bool  # the envelope carries a checkpoint (good or bad)
    witness: _Cp | None  # that checkpoint, verified


class _Probe(NamedTuple):
    """An entry of the child's that a receipt names."""

    kind: str
    signer: str = ""
    message_id: str = ""
    body_sha256: bytes = b""


class _Link(NamedTuple):
    idx: int
    role: int
    key: bytes
    tls_sha256: bytes


@dataclass
class _Scan:
    """One export: verified by verify_export while a collector reads the lines it checked."""

    role: str
    other: str
    sizes: set[int] = field(default_factory=set)  # own sizes whose roots are wanted
    entries: set[int] = field(default_factory=set)  # own entries a receipt names
    node_id: str = ""
    key: bytes = b""
    exported_text: str = ""
    exported_at: dt.datetime = _NEVER
    report: AuditReport | None = None
    link: _Link | None = None
    other_keys: list[bytes] = field(default_factory=list)  # the other's keys after rotations
    sent: dict[tuple[str, str], _Env] = field(default_factory=dict)
    received: dict[tuple[str, str], _Env] = field(default_factory=dict)
    receipts: list[_Receipt] = field(default_factory=list)
    witnessed: list[tuple[_Env, _Cp]] = field(default_factory=list)  # the other's checkpoints
    other_sizes: set[int] = field(default_factory=set)
    probes: dict[int, _Probe] = field(default_factory=dict)
    roots: dict[int, bytes] = field(default_factory=lambda: {0: EMPTY_ROOT})
    found: list[Finding] = field(default_factory=list)
    frontier: Frontier = field(default_factory=Frontier)
    broken: str | None = None

    @property
    def size(self) -> int:
        return self.frontier.size

    def run(self, source: LineSource, trusted: str | None, meter: _Meter) -> Finding | None:
        lines = source()
        try:
            report = meter.phase()
            self.report = verify_export(self._tee(lines), trusted_vkey=trusted, progress=report)
        except AuditFailure as e:
            if not self.node_id and e.finding.kind == "format":
                raise ValidationError(
                    f"the {self.role} export is not a {EXPORT_FORMAT} version "
                    f"{EXPORT_VERSION} file: {e.finding.detail}"
                ) from e
            return Finding(
                "unverified-export",
                f"the {self.role} export does not verify, so nothing can be reconciled: "
                f"{e.finding}",
                **self.where(e.finding.index),
            )
        finally:
            _close(lines)
        if self.broken is not None:  # a value verify_export does not check, e.g. a sent_at
            raise ValidationError(f"the {self.role} export cannot be read: {self.broken}")
        self.exported_at = _parse_time(self.role, self.exported_text)
        return None

    def summary(self) -> ExportSummary:
        assert self.report is not None
        r = self.report
        return ExportSummary(r.node_id, r.vkey, r.entries, r.checkpoints, self.exported_text)

    def receipt_entries(self) -> set[int]:
        return {r.entry_index for r in self.receipts}

    def where(self, index: int | None) -> dict[str, Any]:
        return {f"{self.role}_index": index}

    def _tee(self, lines: Iterable[str | bytes]) -> Iterator[str | bytes]:
        """Hand each line on; read it when the next is asked for, i.e. once it is checked."""
        for raw in lines:
            yield raw
            if self.broken is None:
                try:
                    self._line(raw)
                except (ValueError, TypeError, KeyError, DecodeError, NodeError) as e:
                    self.broken = f"{type(e).__name__}: {e}"

    def _line(self, raw: str | bytes) -> None:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        if not text.strip():
            return
        obj = json.loads(text)
        kind = obj.get("type")
        if kind == "header":
            self.node_id, self.exported_text = obj["node_id"], obj["exported_at"]
            self.key = base64.b64decode(obj["signing_public_key"])
        elif kind == "entry":
            self._entry(obj["index"], base64.b64decode(obj["entry"]))
        elif kind == "checkpoint" and obj["size"] == self.size:
            self.roots[self.size] = self.frontier.root()

    def _entry(self, index: int, data: bytes) -> None:
        self.frontier.append(leaf_hash(data))
        if self.size in self.sizes:
            self.roots[self.size] = self.frontier.root()
        entry = ledger_pb2.LedgerEntry.FromString(data)
        kind = entry.WhichOneof("kind") or ""
        if kind in _BY_KIND:
            self._envelope(index, entry, kind)
        elif index in self.entries:
            self.probes[index] = _Probe(kind)
        if kind == "link_established" and entry.link_established.peer_id == self.other:
            link = entry.link_established
            self.link = _Link(index, link.role, link.peer_signing_key, link.peer_tls_sha256)
        elif kind == "link_agreed":
            # Signatures were checked by verify_export; here only who is who.
            agreement = trust_pb2.LinkAgreement.FromString(entry.link_agreed.agreement.agreement)
            for keys, role in (
                (agreement.parent, ledger_pb2.PEER_ROLE_PARENT),
                (agreement.child, ledger_pb2.PEER_ROLE_CHILD),
            ):
                if keys.node_id == self.other:
                    self.link = _Link(index, role, keys.signing_key, keys.tls_cert_sha256)
        elif kind == "peer_key_rotated":
            # The other rotated its keys (verify_export checked the record): its later
            # checkpoints are signed with the new key.
            rotated = trust_pb2.KeyRotation.FromString(entry.peer_key_rotated.rotation.rotation)
            if rotated.node_id == self.other:
                self.other_keys.append(bytes(rotated.new_signing_key))
        elif kind == "peer_fork_detected" and entry.peer_fork_detected.peer_id == self.other:
            fork = _FORKS.get(entry.peer_fork_detected.kind, "of an unknown kind")
            self.found.append(
                Finding(
                    "fork-recorded",
                    f"the {self.role}'s ledger records that {self.other} presented signed "
                    f"checkpoints that contradict each other ({fork}); the evidence (both "
                    "notes, the proof, the envelope) is in this entry",
                    **self.where(index),
                )
            )

    def _envelope(self, index: int, entry: ledger_pb2.LedgerEntry, kind: str) -> None:
        pair, is_sent = _BY_KIND[kind]
        signed = getattr(entry, kind).envelope
        env = envelope_pb2.Envelope.FromString(signed.body)
        body_sha256 = hashlib.sha256(signed.body).digest()
        if index in self.entries:
            self.probes[index] = _Probe(kind, signed.signer, env.message_id, body_sha256)
        if (env.recipient if is_sent else env.sender) != self.other:
            return
        rec = _Env(
            pair.payload,
            env.message_id,
            index,
            _tracking_id(env),
            env.sent_at.ToDatetime(tzinfo=dt.UTC),
            body_sha256,
            signed.signature,
            env.sequence,
        )
        book = self.sent if is_sent else self.received
        first = book.setdefault((pair.payload, env.message_id), rec)
        if first is not rec:
            self.found.append(
                _about(
                    "duplicate",
                    rec,
                    self,
                    f"the {self.role}'s ledger records this {pair.payload} a second time "
                    f"(first at entry {first.idx}): a replay",
                )
            )
            return
        if is_sent:
            return
        witness = self._witness(rec, env.checkpoint)
        if pair.payload == _RECEIPT:
            r = env.receipt
            self.receipts.append(
                _Receipt(
                    rec,
                    r.referral_message_id,
                    r.referral_body_sha256,
                    r.entry_index,
                    bool(env.checkpoint),
                    witness,
                )
            )
        elif witness is not None:
            self.witnessed.append((rec, witness))

    def _witness(self, rec: _Env, note: bytes) -> _Cp | None:
        """The other's checkpoint carried by an envelope it sent, if it is the other's."""
        if not note or self.link is None:
            return None
        origin = origin_for(self.other)
        try:
            keys = [self.link.key, *self.other_keys]
            cp = open_checkpoint(note, [Verifier.from_public_key(origin, k) for k in keys])
            if cp.origin != origin:
                raise ValidationError(f"expected origin {origin}, found {cp.origin}")
        except (NodeError, ValueError) as e:
            self.found.append(
                _about(
                    "bad-witness",
                    rec,
                    self,
                    f"the {rec.payload} carries a checkpoint that is not one {self.other} "
                    f"signed with the key the {self.role} pinned: {e}",
                )
            )
            return None
        self.other_sizes.add(cp.size)
        return _Cp(cp.size, cp.root)

    def rescan(self, source: LineSource, sizes: set[int], meter: _Meter) -> None:
        """Read the entries again for the roots at `sizes` (checkpoints the export lacks)."""
        assert self.report is not None
        frontier, report = Frontier(), meter.phase(extra=self.size)
        lines = source()
        try:
            for raw in lines:
                obj = json.loads(raw) if raw.strip() else {}
                if obj.get("type") != "entry":
                    continue
                frontier.append(leaf_hash(base64.b64decode(obj["entry"])))
                if frontier.size in sizes:
                    self.roots[frontier.size] = frontier.root()
                if frontier.size % 4096 == 0:
                    report(frontier.size)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise IntegrityError(f"the {self.role} export changed while being read: {e}") from e
        finally:
            _close(lines)
        if frontier.size != self.size or frontier.root() != self.report.root:
            raise IntegrityError(f"the {self.role} export changed while being read; run again")


class _Meter:
    """Entries read over every pass, for one progress bar."""

    def __init__(self, progress: Callable[[int, int | None], None] | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def phase(self, extra: int = 0) -> Callable[[int], None]:
        base, self.total = self.done, self.total + extra

        def report(n: int) -> None:
            self.done = base + n
            if self.progress is not None:
                self.progress(self.done, self.total)

        return report


def _peek(source: LineSource) -> tuple[str, int]:
    """The node id and size a header announces (unverified: verification comes next)."""
    lines = source()
    try:
        for raw in lines:
            obj = json.loads(raw)
            node_id, size = obj.get("node_id"), obj.get("size")
            return (
                node_id if isinstance(node_id, str) else "",
                size if isinstance(size, int) else 0,
            )
    except (ValueError, AttributeError):
        pass
    finally:
        _close(lines)
    return "", 0


def _close(lines: Iterable[Any]) -> None:
    close = getattr(lines, "close", None)
    if callable(close):
        close()


def _parse_time(role: str, text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as e:
        raise ValidationError(
            f"expected the {role} export's exported_at in ISO 8601, found {text!r}"
        ) from e
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _tracking_id(env: envelope_pb2.Envelope) -> str:
    """The complaint an envelope is about: its payload's tracking_id, or its complaint's."""
    kind = env.WhichOneof("payload")
    if kind is None:
        return ""
    payload = getattr(env, kind)
    fields = payload.DESCRIPTOR.fields_by_name
    if "tracking_id" in fields:
        return str(payload.tracking_id)
    if "complaint" in fields:
        return str(payload.complaint.tracking_id)
    return ""


def _about(kind: str, rec: _Env, side: _Scan, detail: str, **where: Any) -> Finding:
    return Finding(
        kind,
        detail,
        tracking_id=rec.tracking_id or None,
        message_id=rec.message_id,
        payload=rec.payload,
        **{**side.where(rec.idx), **where},
    )


def _when(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="seconds")


def _short(h: bytes) -> str:
    return h.hex()[:16]


# --- comparing the two ------------------------------------------------------------------


class _Comparison:
    def __init__(self, parent: _Scan, child: _Scan, slack: dt.timedelta) -> None:
        self.p, self.c, self.slack = parent, child, slack
        self.items: list[Finding] = []
        self.envelopes = self.receipts = self.checkpoints = 0

    def _add(self, kind: str, detail: str, **where: Any) -> None:
        self.items.append(Finding(kind, detail, **where))

    def run(self) -> Reconciliation:
        self._links()
        for sender, receiver in ((self.p, self.c), (self.c, self.p)):
            self._envelopes(sender, receiver)
        for r in self.p.receipts:
            self._receipt(r)
        for sender, receiver in ((self.p, self.c), (self.c, self.p)):
            for rec, cp in receiver.witnessed:
                self._carried(sender, receiver, rec, cp)
        self.items += self.p.found + self.c.found
        return Reconciliation(
            self.p.summary(),
            self.c.summary(),
            tuple(f for f in self.items if not f.pending),
            tuple(f for f in self.items if f.pending),
            self.envelopes,
            self.receipts,
            self.checkpoints,
        )

    # 2. Links.
    def _links(self) -> None:
        for me, other in ((self.p, self.c), (self.c, self.p)):
            link, at = me.link, me.where(None if me.link is None else me.link.idx)
            name = f"the {me.role}'s ledger ({me.node_id})"
            if link is None:
                self._add(
                    "not-linked",
                    f"{name} records no link to {other.node_id}: these are not the ledgers "
                    "of a linked parent and child",
                    **at,
                )
                continue
            role = _ROLES.get(link.role, "unspecified")
            if role != other.role:
                swapped = (
                    " (are PARENT_EXPORT and CHILD_EXPORT swapped?)" if role == me.role else ""
                )
                self._add(
                    "link-role",
                    f"{name} links {other.node_id} as its {role}, not as its {other.role}{swapped}",
                    **at,
                )
            if not hmac.compare_digest(link.key, other.key):
                self._add(
                    "link-key",
                    f"{name} pins signing key {_key_id(link.key)} for {other.node_id}, but "
                    f"the {other.role} export is signed with {_key_id(other.key)}: another "
                    "key (substituted, or another node under the same id)",
                    **at,
                )
            if len(link.tls_sha256) != 32:
                self._add(
                    "link-tls",
                    f"{name} pins no TLS certificate fingerprint for {other.node_id} (found "
                    f"{len(link.tls_sha256)} bytes, expected a SHA-256)",
                    **at,
                )

    # 3. Envelopes, both ways.
    def _envelopes(self, sender: _Scan, receiver: _Scan) -> None:
        for key, s in sender.sent.items():
            pair = _PAIR_OF[s.payload]
            if pair.received is None:
                continue
            r = receiver.received.get(key)
            if r is None:
                self.items.append(self._missing(s, sender, receiver, pair.received, "not-received"))
            elif s.body_sha256 != r.body_sha256 or s.signature != r.signature:
                what = (
                    f"bodies (SHA-256 {_short(s.body_sha256)} sent, "
                    f"{_short(r.body_sha256)} received)"
                    if s.body_sha256 != r.body_sha256
                    else "signatures over the same body"
                )
                self.items.append(
                    _about(
                        "envelope-mismatch",
                        s,
                        sender,
                        f"both ledgers record this {s.payload}, with different {what}",
                        **receiver.where(r.idx),
                    )
                )
            else:
                self.envelopes += 1
        for key, r in receiver.received.items():
            pair = _PAIR_OF[r.payload]
            if pair.sent is not None and key not in sender.sent:
                self.items.append(self._missing(r, receiver, sender, pair.sent, "not-sent"))

    def _missing(self, rec: _Env, has: _Scan, lacks: _Scan, entry_kind: str, kind: str) -> Finding:
        """`has` recorded `rec`; `lacks`, whose export may predate it, has no `entry_kind`."""
        sent = f"sent at {_when(rec.sent_at)}"
        taken = f"the {lacks.role}'s export ({_when(lacks.exported_at)})"
        later = max((r.sequence for r in lacks.received.values()), default=0)
        if kind == "not-received" and later > rec.sequence:
            # Envelopes are applied in sequence order: the receiver recorded a later one
            # from the same sender, so this one reached it before, whatever the clocks say.
            taken = f"{taken}, which records a later envelope (sequence {later})"
        elif self._after(rec, lacks):
            return _about("in-flight", rec, has, f"{sent}, after {taken} was taken: not in it yet")
        if kind == "not-received":
            why = f"dropped, or the {lacks.role} rewrote its ledger"
        else:
            why = (
                f"forged or replayed (it is signed with the key pinned for {lacks.node_id}), "
                f"or the {lacks.role} erased it from its ledger"
            )
        return _about(
            kind,
            rec,
            has,
            f"{sent}, before {taken}; the {lacks.role}'s ledger has no {entry_kind} of it: {why}",
        )

    # 4. Receipts.
    def _receipt(self, r: _Receipt) -> None:
        p, c, env = self.p, self.c, r.env
        at = {"child_index": r.entry_index}
        referral = p.sent.get(("referral", r.referral_message_id))
        wrong = None
        if referral is None:
            wrong = f"which the parent's ledger does not record as sent to {c.node_id}"
        elif referral.body_sha256 != r.referral_body_sha256:
            wrong = (
                f"for body SHA-256 {_short(r.referral_body_sha256)}, but the parent sent "
                f"{_short(referral.body_sha256)}"
            )
        elif referral.tracking_id != env.tracking_id:
            wrong = f"which was for {referral.tracking_id}, not {env.tracking_id}"
        if wrong is not None:
            self.items.append(
                _about(
                    "receipt-unknown-referral",
                    env,
                    p,
                    f"the receipt acknowledges referral {r.referral_message_id}, {wrong}",
                    **at,
                )
            )
        if not r.carried:
            self.items.append(
                _about(
                    "receipt-unwitnessed",
                    env,
                    p,
                    f"the receipt carries no checkpoint of {c.node_id}'s ledger covering entry "
                    f"{r.entry_index}, so nothing binds the child to that entry",
                    **at,
                )
            )
        elif r.witness is not None and r.witness.size <= r.entry_index:
            self.items.append(
                _about(
                    "witness-short",
                    env,
                    p,
                    f"the receipt's checkpoint of size {r.witness.size} does not cover the "
                    f"entry {r.entry_index} it names",
                    **at,
                )
            )
        claimed = max(r.entry_index + 1, r.witness.size if r.witness is not None else 0)
        if claimed > c.size:
            self.items.append(self._beyond(c, p, env, claimed, **at))
            return
        if r.witness is not None:
            self._root(c, p, env, r.witness, **at)
        self.receipts += 1
        probe = c.probes.get(r.entry_index, _Probe(""))
        ok = (
            probe.kind == "referral_received"
            and probe.signer == p.node_id
            and probe.message_id == r.referral_message_id
            and probe.body_sha256 == r.referral_body_sha256
        )
        if ok:
            return
        if probe.kind != "referral_received":
            found = f"a {probe.kind or 'entry without a kind'}"
        elif probe.signer != p.node_id:
            found = f"a referral from {probe.signer}"
        elif probe.message_id != r.referral_message_id:
            found = f"referral {probe.message_id}"
        else:
            found = f"that referral with body SHA-256 {_short(probe.body_sha256)}"
        elsewhere = c.received.get(("referral", r.referral_message_id))
        then = (
            f"; the child records that referral at entry {elsewhere.idx}"
            if elsewhere is not None
            else "; the child's ledger does not record that referral at all"
        )
        self.items.append(
            _about(
                "receipt-entry-mismatch",
                env,
                p,
                f"the receipt names child entry {r.entry_index} as referral "
                f"{r.referral_message_id} (body SHA-256 {_short(r.referral_body_sha256)}), "
                f"but that entry is {found}{then}",
                **at,
            )
        )

    # 5. Checkpoints carried by envelopes, against the sender's export.
    def _carried(self, sender: _Scan, receiver: _Scan, rec: _Env, cp: _Cp) -> None:
        sent = sender.sent.get((rec.payload, rec.message_id))
        at = sender.where(None if sent is None else sent.idx)
        if cp.size > sender.size:
            self.items.append(self._beyond(sender, receiver, rec, cp.size, **at))
        else:
            self._root(sender, receiver, rec, cp, **at)

    def _root(self, sender: _Scan, receiver: _Scan, rec: _Env, cp: _Cp, **at: Any) -> None:
        self.checkpoints += 1
        exported = sender.roots[cp.size]
        if hmac.compare_digest(exported, cp.root):
            return
        self.items.append(
            _about(
                "witness-mismatch",
                rec,
                receiver,
                f"{sender.node_id} signed a checkpoint of size {cp.size} with root "
                f"{_short(cp.root)} carried by this {rec.payload}, but its exported tree at "
                f"that size has root {_short(exported)}: the {sender.role} rewrote entries "
                f"0..{cp.size - 1} after signing it",
                **at,
            )
        )

    def _after(self, rec: _Env, export: _Scan) -> bool:
        """Was `rec` sent after `export` was taken (step 6)?"""
        return rec.sent_at - export.exported_at > -self.slack

    def _beyond(self, sender: _Scan, receiver: _Scan, rec: _Env, n: int, **at: Any) -> Finding:
        """`sender` vouched, in `rec`, for n entries; its export has fewer."""
        said = (
            f"{sender.node_id} vouched for {n} entries in this {rec.payload}, sent at "
            f"{_when(rec.sent_at)}; its export has {sender.size}, taken at "
            f"{_when(sender.exported_at)}"
        )
        if self._after(rec, sender):
            return _about("export-behind", rec, receiver, f"{said}: ask for a newer export", **at)
        return _about(
            "rolled-back",
            rec,
            receiver,
            f"{said}, later: the {sender.role}'s ledger went back in time (restored or rewritten)",
            **at,
        )


def _key_id(raw: bytes) -> str:
    try:
        return VerifyKey(raw).key_id.hex()[:16]
    except ValidationError:
        return f"<{len(raw)} bytes>"
