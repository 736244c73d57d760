"""Reading one export for a reconciliation (steps 1 and the collection for 2 to 6 of
node.ledger.reconcile): `Scan` verifies it with verify_export while a collector reads each
line verify_export has checked.

Pure: lines in, records out. Invariants: a Scan reads its export once (and once more in
`rescan`, only for the roots at sizes the export has no checkpoint of); it records only
what verify_export has already checked, so a finding of the collector is never about an
unverified line; a line verify_export accepts but the collector cannot read (a value
verify_export does not check) makes the export unreadable, not a finding.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2, trust_pb2
from node.errors import IntegrityError, NodeError, ValidationError
from node.ledger._reconcile_model import (
    BY_KIND,
    FORKS,
    NEVER,
    RECEIPT,
    Cp,
    Env,
    ExportSummary,
    Finding,
    LineSource,
    Link,
    Probe,
    Receipt,
)
from node.ledger.checkpoint import origin_for
from node.ledger.export import EXPORT_FORMAT, EXPORT_VERSION
from node.ledger.findings import AuditFailure
from node.ledger.merkle import EMPTY_ROOT, Frontier, leaf_hash
from node.ledger.note import Verifier, open_checkpoint
from node.ledger.verify import AuditReport, verify_export

__all__ = ["Meter", "Scan", "about", "close_lines", "peek", "short", "when"]


@dataclass
class Scan:
    """One export: verified by verify_export while a collector reads the lines it checked."""

    role: str
    other: str
    sizes: set[int] = field(default_factory=set)  # own sizes whose roots are wanted
    entries: set[int] = field(default_factory=set)  # own entries a receipt names
    node_id: str = ""
    key: bytes = b""
    exported_text: str = ""
    exported_at: dt.datetime = NEVER
    report: AuditReport | None = None
    link: Link | None = None
    other_keys: list[bytes] = field(default_factory=list)  # the other's keys after rotations
    sent: dict[tuple[str, str], Env] = field(default_factory=dict)
    received: dict[tuple[str, str], Env] = field(default_factory=dict)
    receipts: list[Receipt] = field(default_factory=list)
    witnessed: list[tuple[Env, Cp]] = field(default_factory=list)  # the other's checkpoints
    other_sizes: set[int] = field(default_factory=set)
    probes: dict[int, Probe] = field(default_factory=dict)
    roots: dict[int, bytes] = field(default_factory=lambda: {0: EMPTY_ROOT})
    found: list[Finding] = field(default_factory=list)
    frontier: Frontier = field(default_factory=Frontier)
    broken: str | None = None

    @property
    def size(self) -> int:
        return self.frontier.size

    def run(self, source: LineSource, trusted: str | None, meter: Meter) -> Finding | None:
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
            close_lines(lines)
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
        if kind in BY_KIND:
            self._envelope(index, entry, kind)
        elif index in self.entries:
            self.probes[index] = Probe(kind)
        if kind == "link_established" and entry.link_established.peer_id == self.other:
            link = entry.link_established
            self.link = Link(index, link.role, link.peer_signing_key, link.peer_tls_sha256)
        elif kind == "link_agreed":
            # Signatures were checked by verify_export; here only who is who.
            agreement = trust_pb2.LinkAgreement.FromString(entry.link_agreed.agreement.agreement)
            for keys, role in (
                (agreement.parent, ledger_pb2.PEER_ROLE_PARENT),
                (agreement.child, ledger_pb2.PEER_ROLE_CHILD),
            ):
                if keys.node_id == self.other:
                    self.link = Link(index, role, keys.signing_key, keys.tls_cert_sha256)
        elif kind == "peer_key_rotated":
            # The other rotated its keys (verify_export checked the record): its later
            # checkpoints are signed with the new key.
            rotated = trust_pb2.KeyRotation.FromString(entry.peer_key_rotated.rotation.rotation)
            if rotated.node_id == self.other:
                self.other_keys.append(bytes(rotated.new_signing_key))
        elif kind == "peer_fork_detected" and entry.peer_fork_detected.peer_id == self.other:
            fork = FORKS.get(entry.peer_fork_detected.kind, "of an unknown kind")
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
        pair, is_sent = BY_KIND[kind]
        signed = getattr(entry, kind).envelope
        env = envelope_pb2.Envelope.FromString(signed.body)
        body_sha256 = hashlib.sha256(signed.body).digest()
        if index in self.entries:
            self.probes[index] = Probe(kind, signed.signer, env.message_id, body_sha256)
        if (env.recipient if is_sent else env.sender) != self.other:
            return
        rec = Env(
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
                about(
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
        if pair.payload == RECEIPT:
            r = env.receipt
            self.receipts.append(
                Receipt(
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

    def _witness(self, rec: Env, note: bytes) -> Cp | None:
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
                about(
                    "bad-witness",
                    rec,
                    self,
                    f"the {rec.payload} carries a checkpoint that is not one {self.other} "
                    f"signed with the key the {self.role} pinned: {e}",
                )
            )
            return None
        self.other_sizes.add(cp.size)
        return Cp(cp.size, cp.root)

    def rescan(self, source: LineSource, sizes: set[int], meter: Meter) -> None:
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
            close_lines(lines)
        if frontier.size != self.size or frontier.root() != self.report.root:
            raise IntegrityError(f"the {self.role} export changed while being read; run again")


class Meter:
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


def peek(source: LineSource) -> tuple[str, int]:
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
        close_lines(lines)
    return "", 0


def close_lines(lines: Iterable[Any]) -> None:
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


def about(kind: str, rec: Env, side: Scan, detail: str, **where: Any) -> Finding:
    return Finding(
        kind,
        detail,
        tracking_id=rec.tracking_id or None,
        message_id=rec.message_id,
        payload=rec.payload,
        **{**side.where(rec.idx), **where},
    )


def when(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="seconds")


def short(h: bytes) -> str:
    return h.hex()[:16]
