"""The pinned-certificate set of the running node, and what follows from it: the trust
roots of the mutual-TLS server (re-read at each handshake through dynamic server
credentials), the certificate each port presents (after `keys rotate`, the old one for a
while: node.services.rotation.presented_identities), and revocation.

The refresher re-reads the active links every PIN_REFRESH_SECONDS after a change, the pause
doubling at each refresh that finds none up to PIN_REFRESH_MAX_SECONDS (an idle node does
not read them every second, issue 20.5). A new child is trusted
from its next handshake; a peer whose link was revoked (or whose pinned certificate
changed) loses its live stream at once (its session task is cancelled; a child is told
why), and a parent whose pin changed has its session ended so that the dialer dials the
new pin."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from node.crypto.keyfiles import read_file
from node.errors import NodeError
from node.federation.live import LiveLinks
from node.federation.workers import DbWorkers
from node.services import links, rotation
from node.services.context import NodeContext

__all__ = ["PIN_REFRESH_MAX_SECONDS", "PIN_REFRESH_SECONDS", "REVOKED_METADATA", "Pins"]

PIN_REFRESH_SECONDS = 1.0
PIN_REFRESH_MAX_SECONDS = 4.0
# The trailing metadata key with which a parent ends the stream of a child whose link it
# revoked (the value: the parent's node id); the child's dialer stops dialing on it.
REVOKED_METADATA = "lapor-link-revoked"


class Pins:
    def __init__(self, ctx: NodeContext, db: DbWorkers, live: LiveLinks, log: Any) -> None:
        self.ctx = ctx
        self.db = db
        self.live = live
        self.log = log
        self.tls_key = read_file(ctx.config.tls_key, "TLS key")
        self.tls_cert = read_file(ctx.config.tls_cert, "TLS certificate")
        # What this node presents: after `keys rotate`, the old certificate for a while
        # (node.services.rotation.presented_identities); else the configured files.
        current = rotation.Identity(self.tls_key, self.tls_cert)
        self.server_identity = current
        self.client_identity = current
        self.enrollment_identity = current
        self._enrollment_changed = self._intake_changed = False
        self.pins: list[links.Pin] = []
        self.changed = True
        # Set (and replaced by a new one) by each refresh that loads a different pinned set:
        # what the dialer waits on while it has no parent to dial (`reloaded`).
        self._reloaded = asyncio.Event()
        # The dialer's running session with the parent, ended here if the parent's pin
        # changes or goes (node.federation.dialer).
        self.parent_session: tuple[links.Pin, asyncio.Task[Any]] | None = None

    def parent(self) -> links.Pin | None:
        return next((p for p in self.pins if p.role == "parent"), None)

    async def reloaded(self) -> None:
        """Return once a refresh has loaded a different pinned set than the current one."""
        await self._reloaded.wait()

    def role_of(self, peer: str) -> str | None:
        return next((p.role for p in self.pins if p.peer_id == peer), None)

    async def run(self) -> None:
        pause = PIN_REFRESH_SECONDS
        while True:
            await asyncio.sleep(pause)
            moved = True
            try:
                moved = await self.refresh()
            except NodeError as e:
                self.log.error("pins.refresh_failed", error=str(e))
            pause = PIN_REFRESH_SECONDS if moved else min(pause * 2, PIN_REFRESH_MAX_SECONDS)

    async def refresh(self) -> bool:
        """Re-read the pins and the identities to present; whether anything changed. All of
        it in one trip to a reader thread (`_load`): an idle node refreshes every
        PIN_REFRESH_MAX_SECONDS, and each trip wakes a thread (issue 20.5)."""
        known = {p.peer_id: p for p in self.pins}
        pins, presented, current = await self.db.read(_load, self.ctx, known)
        moved = False
        if [(p.peer_id, p.fingerprints, p.address) for p in pins] != [
            (p.peer_id, p.fingerprints, p.address) for p in self.pins
        ]:
            # Gone: a pin with a certificate no longer accepted (revoked, re-pinned, or an
            # earlier certificate past its grace period). A new certificate added beside
            # the old one (the peer rotated its keys) ends no stream.
            kept = {(p.peer_id, fp) for p in pins for fp in p.fingerprints}
            gone = [
                p for p in self.pins if any((p.peer_id, fp) not in kept for fp in p.fingerprints)
            ]
            self.pins = pins
            self.changed = moved = True
            self.log.info("pins.loaded", peers=[p.peer_id for p in pins])
            for pin in gone:
                self._drop(pin)
            self._reloaded.set()
            self._reloaded = asyncio.Event()
        parent = self.parent_session
        if parent is not None and not parent[1].done():
            now = next((p for p in self.pins if p.peer_id == parent[0].peer_id), None)
            if (
                now is None
                or not set(parent[0].fingerprints) <= set(now.fingerprints)
                or now.address != (parent[0].address)
            ):
                parent[1].cancel()
        return self._refresh_identities(presented, current) or moved

    def _refresh_identities(
        self,
        presented: tuple[rotation.Identity, rotation.Identity],
        current: rotation.Identity,
    ) -> bool:
        """Which certificate to present, as a server and to the parent (key rotation)."""
        server, client = presented
        moved = False
        if server != self.server_identity:
            self.server_identity = server
            self.changed = moved = True
            self.log.info("tls.identity_changed", role="server")
        if client != self.client_identity:
            self.client_identity = client
            moved = True
            self.log.info("tls.identity_changed", role="client")
        if current != self.enrollment_identity:
            self.tls_key, self.tls_cert = current.key_pem, current.cert_pem
            self.enrollment_identity = current
            self._enrollment_changed = self._intake_changed = moved = True
        return moved

    def _drop(self, pin: links.Pin) -> None:
        """`pin` is no longer trusted (revoked, or re-pinned to another certificate): close
        its live stream now."""
        task = self.live.tasks.get(pin.peer_id)
        repinned = any(p.peer_id == pin.peer_id for p in self.pins)
        if task is not None and not task.done():
            self.live.dropped[pin.peer_id] = (
                (
                    grpc.StatusCode.UNAVAILABLE,
                    f"{self.ctx.node_id} now pins another certificate for {pin.peer_id}; "
                    "reconnect with it",
                    (),
                )
                if repinned
                else (
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"{self.ctx.node_id} ended its link with {pin.peer_id}; this node refuses "
                    "its connections from now on. Its operator can tell you why "
                    "(`lapor-node link list` there shows the revocation)",
                    ((REVOKED_METADATA, self.ctx.node_id),),
                )
            )
            task.cancel()
        self.log.warning(
            "link.unpinned", peer=pin.peer_id, repinned=repinned, closed_stream=task is not None
        )

    # TLS callbacks (called by gRPC at each handshake) ---------------------------------

    def server_configuration(self) -> Any:
        """The main port's certificate and trust roots: the pinned peers and the listed
        auditors. With nothing pinned yet, trust only ourselves: nobody else gets in."""
        pinned = [cert for p in self.pins for cert in p.certificates]
        pinned += [a.cert_pem for a in self.ctx.config.auditors]
        own = self.server_identity
        roots = b"".join(pinned) or own.cert_pem
        return grpc.ssl_server_certificate_configuration(
            [(own.key_pem, own.cert_pem)], root_certificates=roots
        )

    def fetch_server_configuration(self) -> Any:
        """None keeps the current configuration."""
        if not self.changed:
            return None
        self.changed = False
        return self.server_configuration()

    def fetch_enrollment_identity(self) -> Any:
        """The enrollment port presents the current certificate (the one new join tokens
        name), from the next handshake after a key rotation; None keeps it."""
        if not self._enrollment_changed:
            return None
        self._enrollment_changed = False
        own = self.enrollment_identity
        return grpc.ssl_server_certificate_configuration([(own.key_pem, own.cert_pem)])

    def fetch_intake_identity(self) -> Any:
        """The intake port, like the enrollment port, presents the current certificate."""
        if not self._intake_changed:
            return None
        self._intake_changed = False
        own = self.enrollment_identity
        return grpc.ssl_server_certificate_configuration([(own.key_pem, own.cert_pem)])


def _load(
    ctx: NodeContext, known: dict[str, links.Pin]
) -> tuple[list[links.Pin], tuple[rotation.Identity, rotation.Identity], rotation.Identity]:
    """What a refresh reads (on a reader thread): the pins (the certificates only of those
    not `known` as they are: links.pins); the identities to present as a
    server and to the parent these pins name (node.services.rotation.presented_identities);
    the configured key and certificate (the enrollment and intake ports')."""
    pins = links.pins(ctx, known)
    parent = next((p.peer_id for p in pins if p.role == "parent"), None)
    presented = rotation.presented_identities(ctx, parent)
    return pins, presented, rotation.current_identity(ctx.config)
