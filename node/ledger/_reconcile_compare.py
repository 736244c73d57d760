"""Comparing a parent's and a child's scanned exports (steps 2 to 6 of
node.ledger.reconcile): links, envelopes both ways, receipts, carried checkpoints, timing.

Pure. Invariants: every step runs to the end, so every discrepancy is listed, each once;
pending items (in-flight, export-behind) are listed apart; nothing here reads an export
again: it compares only what the two Scans kept.
"""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Any

from node.crypto.signing import VerifyKey
from node.errors import ValidationError
from node.ledger._reconcile_model import (
    LOST,
    PAIR_OF,
    ROLES,
    Cp,
    Env,
    Finding,
    Probe,
    Receipt,
    Reconciliation,
)
from node.ledger._reconcile_scan import Scan, about, short, when

__all__ = ["Comparison"]


class Comparison:
    def __init__(self, parent: Scan, child: Scan, slack: dt.timedelta) -> None:
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
        self._explain_lost()
        return Reconciliation(
            self.p.summary(),
            self.c.summary(),
            tuple(f for f in self.items if not f.pending),
            tuple(f for f in self.items if f.pending),
            self.envelopes,
            self.receipts,
            self.checkpoints,
        )

    # 7. What a signed discontinuity explains (node.ledger.discontinuity, ADR 0023).
    def _explain_lost(self) -> None:
        """A sender that lost the end of its ledger and said so: every finding about an
        envelope it sent before its statement, vouching for more entries than it restarted
        from, is one `lost-in-discontinuity` item (listed apart, not a discrepancy)."""
        for sender, receiver in ((self.p, self.c), (self.c, self.p)):
            assert sender.report is not None
            for index, gap in sender.report.discontinuities:
                declared = dt.datetime.fromisoformat(gap.declared_at.replace("Z", "+00:00"))
                carried = [*receiver.witnessed, *((r.env, r.witness) for r in receiver.receipts)]
                lost = {
                    (rec.payload, rec.message_id): (rec, cp)
                    for rec, cp in carried
                    if cp is not None and cp.size > gap.restart_size and rec.sent_at < declared
                }
                ref = f"{sender.role} entry {index}"
                kept: list[Finding] = []
                told: set[tuple[str, str]] = set()
                for f in self.items:
                    key = (f.payload or "", f.message_id or "")
                    if f.pending or key not in lost:
                        kept.append(f)
                        continue
                    if key not in told:
                        told.add(key)
                        rec, cp = lost[key]
                        kept.append(
                            about(
                                LOST,
                                rec,
                                receiver,
                                f"lost in discontinuity {ref}: {sender.node_id} sent this "
                                f"{rec.payload} at {when(rec.sent_at)}, vouching for {cp.size} "
                                f"entries, and lost that history (it restarted from size "
                                f"{gap.restart_size}; reason: {gap.reason})",
                            )
                        )
                self.items = kept

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
            role = ROLES.get(link.role, "unspecified")
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
    def _envelopes(self, sender: Scan, receiver: Scan) -> None:
        for key, s in sender.sent.items():
            pair = PAIR_OF[s.payload]
            if pair.received is None:
                continue
            r = receiver.received.get(key)
            if r is None:
                self.items.append(self._missing(s, sender, receiver, pair.received, "not-received"))
            elif s.body_sha256 != r.body_sha256 or s.signature != r.signature:
                what = (
                    f"bodies (SHA-256 {short(s.body_sha256)} sent, {short(r.body_sha256)} received)"
                    if s.body_sha256 != r.body_sha256
                    else "signatures over the same body"
                )
                self.items.append(
                    about(
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
            pair = PAIR_OF[r.payload]
            if pair.sent is not None and key not in sender.sent:
                self.items.append(self._missing(r, receiver, sender, pair.sent, "not-sent"))

    def _missing(self, rec: Env, has: Scan, lacks: Scan, entry_kind: str, kind: str) -> Finding:
        """`has` recorded `rec`; `lacks`, whose export may predate it, has no `entry_kind`."""
        sent = f"sent at {when(rec.sent_at)}"
        taken = f"the {lacks.role}'s export ({when(lacks.exported_at)})"
        later = max((r.sequence for r in lacks.received.values()), default=0)
        if kind == "not-received" and later > rec.sequence:
            # Envelopes are applied in sequence order: the receiver recorded a later one
            # from the same sender, so this one reached it before, whatever the clocks say.
            taken = f"{taken}, which records a later envelope (sequence {later})"
        elif self._after(rec, lacks):
            return about("in-flight", rec, has, f"{sent}, after {taken} was taken: not in it yet")
        if kind == "not-received":
            why = f"dropped, or the {lacks.role} rewrote its ledger"
        else:
            why = (
                f"forged or replayed (it is signed with the key pinned for {lacks.node_id}), "
                f"or the {lacks.role} erased it from its ledger"
            )
        return about(
            kind,
            rec,
            has,
            f"{sent}, before {taken}; the {lacks.role}'s ledger has no {entry_kind} of it: {why}",
        )

    # 4. Receipts.
    def _receipt(self, r: Receipt) -> None:
        p, c, env = self.p, self.c, r.env
        at = {"child_index": r.entry_index}
        referral = p.sent.get(("referral", r.referral_message_id))
        wrong = None
        if referral is None:
            wrong = f"which the parent's ledger does not record as sent to {c.node_id}"
        elif referral.body_sha256 != r.referral_body_sha256:
            wrong = (
                f"for body SHA-256 {short(r.referral_body_sha256)}, but the parent sent "
                f"{short(referral.body_sha256)}"
            )
        elif referral.tracking_id != env.tracking_id:
            wrong = f"which was for {referral.tracking_id}, not {env.tracking_id}"
        if wrong is not None:
            self.items.append(
                about(
                    "receipt-unknown-referral",
                    env,
                    p,
                    f"the receipt acknowledges referral {r.referral_message_id}, {wrong}",
                    **at,
                )
            )
        if not r.carried:
            self.items.append(
                about(
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
                about(
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
        probe = c.probes.get(r.entry_index, Probe(""))
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
            found = f"that referral with body SHA-256 {short(probe.body_sha256)}"
        elsewhere = c.received.get(("referral", r.referral_message_id))
        then = (
            f"; the child records that referral at entry {elsewhere.idx}"
            if elsewhere is not None
            else "; the child's ledger does not record that referral at all"
        )
        self.items.append(
            about(
                "receipt-entry-mismatch",
                env,
                p,
                f"the receipt names child entry {r.entry_index} as referral "
                f"{r.referral_message_id} (body SHA-256 {short(r.referral_body_sha256)}), "
                f"but that entry is {found}{then}",
                **at,
            )
        )

    # 5. Checkpoints carried by envelopes, against the sender's export.
    def _carried(self, sender: Scan, receiver: Scan, rec: Env, cp: Cp) -> None:
        sent = sender.sent.get((rec.payload, rec.message_id))
        at = sender.where(None if sent is None else sent.idx)
        if cp.size > sender.size:
            self.items.append(self._beyond(sender, receiver, rec, cp.size, **at))
        else:
            self._root(sender, receiver, rec, cp, **at)

    def _root(self, sender: Scan, receiver: Scan, rec: Env, cp: Cp, **at: Any) -> None:
        self.checkpoints += 1
        exported = sender.roots[cp.size]
        if hmac.compare_digest(exported, cp.root):
            return
        self.items.append(
            about(
                "witness-mismatch",
                rec,
                receiver,
                f"{sender.node_id} signed a checkpoint of size {cp.size} with root "
                f"{short(cp.root)} carried by this {rec.payload}, but its exported tree at "
                f"that size has root {short(exported)}: the {sender.role} rewrote entries "
                f"0..{cp.size - 1} after signing it",
                **at,
            )
        )

    def _after(self, rec: Env, export: Scan) -> bool:
        """Was `rec` sent after `export` was taken (step 6)?"""
        return rec.sent_at - export.exported_at > -self.slack

    def _beyond(self, sender: Scan, receiver: Scan, rec: Env, n: int, **at: Any) -> Finding:
        """`sender` vouched, in `rec`, for n entries; its export has fewer."""
        said = (
            f"{sender.node_id} vouched for {n} entries in this {rec.payload}, sent at "
            f"{when(rec.sent_at)}; its export has {sender.size}, taken at "
            f"{when(sender.exported_at)}"
        )
        if self._after(rec, sender):
            return about("export-behind", rec, receiver, f"{said}: ask for a newer export", **at)
        return about(
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
