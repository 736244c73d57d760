"""How both ends of a link notice a silent peer (a network that black-holes packets but
keeps both sockets open), derived from node.yaml's `federation.keepalive_seconds` (K).

Two mechanisms, each enough on its own:
  1. The link's own heartbeat. Each side writes an Ack of what it has committed every
     K/3 seconds (a repeated Ack changes nothing on any version of the protocol, so this
     is wire-compatible). A side that has seen such a heartbeat from its peer ends the
     session when it has heard nothing from the peer for 2K/3 seconds while it was ready
     to read (time spent with its own receive queue full does not count: the peer is not
     silent, we are slow). Only frames from the peer refresh it, never a timer of ours.
  2. HTTP/2 keepalive on both the server and the client: a ping every K/2 seconds,
     unanswered for K/3 seconds, closes the connection (this also covers a peer that runs
     an older version without the heartbeat). grpc (1.85) applies an unanswered ping's
     `grpc.http2.ping_timeout_ms` (default 60 s), not only `keepalive_timeout_ms`: both
     are set. Before, the child pinged every K with the 60 s default and the parent did
     not ping at all, hence a child that noticed a black hole after 75-90 s and a parent
     that never did.

So a silent peer is noticed within about 2K/3 seconds (rule 1: the watch sleeps until
the moment the silence could first pass the limit if nothing more came, and looks
LATE_SECONDS after it; at most CHECK_SECONDS late) and at most 5K/6 (rule 2): 20 s and 25 s
with the default K = 30. A peer that heartbeats is looked at once per heartbeat, not every
second (issue 20.5). The
running node then marks the link not connected, and `last seen` stays at the peer's last
traffic.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CHECK_SECONDS", "LATE_SECONDS", "Liveness", "SilenceWatch"]

CHECK_SECONDS = 1.0
"""How late a session may notice its peer's silence past the limit (at most; less for a
small K): the detection bound's allowance for the watch."""
LATE_SECONDS = 0.05
"""How long after the silence could first pass the limit the watch looks (strictly past
it, as `too_quiet` asks; well within CHECK_SECONDS)."""


@dataclass(frozen=True)
class Liveness:
    """The link's liveness timings for `keepalive_seconds` K."""

    keepalive_seconds: float

    @property
    def beat_seconds(self) -> float:
        """How often each side writes its heartbeat Ack (K/3)."""
        return self.keepalive_seconds / 3

    @property
    def silence_seconds(self) -> float:
        """How long a heartbeating peer may say nothing before the session ends (2K/3)."""
        return 2 * self.beat_seconds

    @property
    def check_seconds(self) -> float:
        return min(CHECK_SECONDS, self.beat_seconds / 4)

    @property
    def ping_ms(self) -> int:
        """HTTP/2 keepalive ping interval (K/2), on the server and the client."""
        return int(self.keepalive_seconds * 500)

    @property
    def ping_timeout_ms(self) -> int:
        """How long an HTTP/2 ping may go unanswered before the connection closes (K/3)."""
        return int(self.keepalive_seconds * 1000 / 3)

    @property
    def detection_bound_seconds(self) -> float:
        """The longest a live session can take to notice a silent peer: the smaller of
        the two mechanisms' worst cases."""
        heartbeat = self.silence_seconds + self.check_seconds
        pings = (self.ping_ms + self.ping_timeout_ms) / 1000
        return min(heartbeat, pings)


class SilenceWatch:
    """How long the peer has been silent while we were ready to hear it. Times are a
    monotonic clock's, passed in (pure: no clock of its own)."""

    def __init__(self, now: float) -> None:
        self.heard_at = now
        self.heartbeating = False  # the peer was seen to send the heartbeat (rule 1)
        self._waiting_since: float | None = None

    def heard(self, now: float, *, heartbeat: bool = False) -> None:
        """A frame from the peer arrived."""
        self.heard_at = now
        self.heartbeating = self.heartbeating or heartbeat

    def waiting(self, now: float) -> None:
        """We are ready to read the peer's next frame."""
        self._waiting_since = now

    def busy(self) -> None:
        """We are not reading (our receive queue is full): silence does not accrue."""
        self._waiting_since = None

    def silent_for(self, now: float) -> float:
        """Seconds the peer has been silent while we waited for it (0 while busy)."""
        if self._waiting_since is None:
            return 0.0
        return now - max(self.heard_at, self._waiting_since)

    def due_in(self, now: float, limit: float) -> float:
        """Seconds from `now` before `too_quiet(limit)` could first hold if no frame came:
        the watch sleeps that long instead of looking every second. A frame resets the
        silence, so looking earlier never finds it too quiet. Not yet heartbeating, or
        busy: the silence that counts starts at a later frame or read, so `limit`."""
        if not self.heartbeating or self._waiting_since is None:
            return limit
        return max(0.0, max(self.heard_at, self._waiting_since) + limit - now)

    def too_quiet(self, now: float, limit: float) -> bool:
        """Rule 1: a heartbeating peer silent for more than `limit` seconds."""
        return self.heartbeating and self.silent_for(now) > limit
