"""A round-robin TCP balancer for tests: each new connection goes to the next of several
targets, as a TCP load balancer (or a DNS name with several addresses) in front of a node's
`serve` hosts would send it. A target that refuses gets the connection reset; the dialer
tries again and reaches the next one. Built on tests.support.proxy.Proxy (its faults work
here too)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from tests.support.proxy import Proxy

__all__ = ["Balancer"]


class Balancer(Proxy):
    def __init__(self, targets: Sequence[str]) -> None:
        super().__init__(targets[0])
        self.targets = [self._parse(t) for t in targets]
        self._next = 0

    @staticmethod
    def _parse(target: str) -> tuple[str, int]:
        host, _, port = target.rpartition(":")
        return host, int(port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.target = self.targets[self._next % len(self.targets)]
        self._next += 1
        await super()._accept(reader, writer)
