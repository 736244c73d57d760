"""When TLS certificates end: this node's own and the one pinned for each linked peer.

A certificate whose validity has ended fails every TLS handshake (the TLS library checks it
against the machine's real clock), and retrying never helps. So operators are told early:
- `keys show` and `link list` print each certificate's end (`tls_valid_until`);
- `serve` exports `lapor_node_certificate_expiry_timestamp_seconds` (node.metrics) at start
  and every WATCH_SECONDS, and logs `certificate.expiring` (warning) for a certificate that
  ends within WARN_BEFORE and `certificate.expired` (error) for one that has ended, once per
  certificate every WARN_EVERY;
- the dashboard shows the same warnings at the top of its overview;
- `link join` refuses to start with an expired certificate of this node.
This node's certificate is renewed by `lapor-node keys rotate`; a peer's by its operator.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from node.crypto.keyfiles import read_file
from node.crypto.tls import fingerprint, valid_until
from node.errors import StateError
from node.logs import get_logger
from node.metrics import CertificateSample, observe_certificates
from node.services.context import NodeContext
from node.store import queries

__all__ = [
    "WARN_BEFORE",
    "WARN_EVERY",
    "WATCH_SECONDS",
    "CertificateExpiry",
    "CertificateWatch",
    "certificate_expiry_samples",
    "certificates",
    "own_certificate",
    "peer_certificates",
    "require_own_valid",
    "warnings",
]

WARN_BEFORE = dt.timedelta(days=30)
"""A certificate that ends within this is warned about."""
WARN_EVERY = dt.timedelta(hours=24)
"""`serve` repeats the log warning about one certificate at most this often."""
WATCH_SECONDS = 60.0
"""How often `serve` refreshes the expiry gauge (and logs a warning that is due)."""

_ROTATE = "rotate keys (`lapor-node keys rotate`)"


@dataclass(frozen=True)
class CertificateExpiry:
    """The end of one certificate: this node's own (`peer` None) or the one pinned for a
    linked peer (`role` parent or child)."""

    node_id: str
    peer: str | None
    role: str
    tls_sha256: str
    valid_until: dt.datetime

    def state(self, now: dt.datetime) -> str:
        """expired | expiring (within WARN_BEFORE) | valid."""
        if now >= self.valid_until:
            return "expired"
        if self.valid_until - now <= WARN_BEFORE:
            return "expiring"
        return "valid"

    def warning(self, now: dt.datetime) -> str | None:
        """What to tell the operator about this certificate now, if anything."""
        state = self.state(now)
        if state == "valid":
            return None
        end = _when(self.valid_until)
        if self.peer is None:
            if state == "expired":
                return (
                    f"certificate expired: this node's TLS certificate ended on {end}, so "
                    f"every TLS handshake with a peer fails: {_ROTATE}"
                )
            return (
                f"this node's TLS certificate ends on {end} ({_days(self.valid_until - now)}): "
                f"{_ROTATE} before then"
            )
        whose = f"the TLS certificate of {self.peer} (this node's {self.role})"
        ask = f"ask its operator to rotate keys (`lapor-node keys rotate` on {self.peer})"
        if state == "expired":
            return (
                f"certificate expired: {whose} ended on {end}; the link stays down until "
                f"it is renewed: {ask}"
            )
        return f"{whose} ends on {end} ({_days(self.valid_until - now)}): {ask} before then"


def _when(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _days(left: dt.timedelta) -> str:
    days = left.days
    if days >= 1:
        return f"in {days} day{'s' if days != 1 else ''}"
    return f"in {max(1, int(left.total_seconds() // 3600))} h"


def own_certificate(ctx: NodeContext) -> CertificateExpiry:
    """This node's current certificate (the configured file)."""
    pem = read_file(ctx.config.tls_cert, "TLS certificate")
    return CertificateExpiry(ctx.node_id, None, "own", fingerprint(pem).hex(), valid_until(pem))


def peer_certificates(ctx: NodeContext) -> list[CertificateExpiry]:
    """The certificate pinned for each active link, parent first."""
    with ctx.db.read() as session:
        return [
            CertificateExpiry(
                link.peer_id,
                link.peer_id,
                link.role,
                link.tls_fingerprint.hex(),
                valid_until(link.tls_cert_pem.encode()),
            )
            for link in queries.list_links(session, active_only=True)
        ]


def certificates(ctx: NodeContext) -> list[CertificateExpiry]:
    """This node's certificate, then each linked peer's."""
    return [own_certificate(ctx), *peer_certificates(ctx)]


def certificate_expiry_samples(ctx: NodeContext) -> list[CertificateSample]:
    """The samples of lapor_node_certificate_expiry_timestamp_seconds (node.metrics)."""
    return [_sample(c) for c in certificates(ctx)]


def _sample(c: CertificateExpiry) -> CertificateSample:
    if c.peer is None:
        return CertificateSample("own", "", c.valid_until.timestamp())
    return CertificateSample("peer", c.peer, c.valid_until.timestamp())


def warnings(ctx: NodeContext) -> list[str]:
    """The warnings due now (the dashboard's), this node's certificate first."""
    now = ctx.clock.now()
    return [w for c in certificates(ctx) if (w := c.warning(now)) is not None]


def require_own_valid(ctx: NodeContext) -> None:
    """Raise StateError if this node's certificate has ended (or ends within the hour): a
    peer would refuse every handshake with it."""
    own = own_certificate(ctx)
    now = ctx.clock.now()
    if now + dt.timedelta(hours=1) >= own.valid_until:
        raise StateError(
            f"certificate expired: this node's TLS certificate ({ctx.node_id}) "
            f"{'ended' if now >= own.valid_until else 'ends'} on {_when(own.valid_until)}, "
            f"so no peer would accept it: {_ROTATE}, then run the same command again"
        )


class CertificateWatch:
    """What `serve` runs every WATCH_SECONDS: set the expiry gauge and log the warnings due
    (each certificate at most once per WARN_EVERY, and again at once if its state changes)."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.log = get_logger(node_id=ctx.node_id)
        self._warned: dict[tuple[str | None, str], tuple[str, dt.datetime]] = {}

    def check(self) -> list[CertificateExpiry]:
        """One round; returns the certificates read."""
        found = certificates(self.ctx)
        observe_certificates(_sample(c) for c in found)
        now = self.ctx.clock.now()
        for c in found:
            message = c.warning(now)
            key = (c.peer, c.tls_sha256)
            if message is None:
                self._warned.pop(key, None)
                continue
            state = c.state(now)
            last = self._warned.get(key)
            if last is not None and last[0] == state and now - last[1] < WARN_EVERY:
                continue
            self._warned[key] = (state, now)
            log = self.log.error if state == "expired" else self.log.warning
            whose = (
                {"certificate": "own"}
                if c.peer is None
                else {"certificate": "peer", "peer": c.peer}
            )
            log(
                f"certificate.{state}",
                **whose,
                role=c.role,
                tls_sha256=c.tls_sha256,
                valid_until=c.valid_until.isoformat(),
                message=message,
            )
        return found
