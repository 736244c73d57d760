"""A Proxy that can freeze: a network black hole, as a middlebox that stops forwarding
without closing anything. Both sockets of every connection stay open and nothing crosses
either way, and new connections are accepted but get nothing through either, until
thaw(); then what was held is delivered late, as TCP would retransmit it."""

from __future__ import annotations

import asyncio

from tests.support.proxy import DOWN, UP, Proxy


class FreezableProxy(Proxy):
    """tests.support.proxy.Proxy with freeze() and thaw()."""

    def __init__(self, target: str, *, seed: int = 0) -> None:
        super().__init__(target, seed=seed)
        self.frozen = False

    def freeze(self) -> None:
        """Hold every byte of the live connections and of any new one, closing nothing."""

        async def act() -> None:
            self.frozen = True
            for conn in self._conns:
                for direction in (UP, DOWN):
                    conn.held.setdefault(direction, asyncio.Event())

        self._call(act)

    def thaw(self) -> None:
        """Forward again (heal(): the held bytes go through, late)."""

        async def act() -> None:
            self.frozen = False

        self._call(act)
        self.heal()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        before = set(self._conns)
        await super()._accept(reader, writer)
        if self.frozen:  # before its pumps first run: nothing of it crosses
            for conn in self._conns - before:
                for direction in (UP, DOWN):
                    conn.held.setdefault(direction, asyncio.Event())
