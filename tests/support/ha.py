"""A node served by several `serve` processes on one PostgreSQL database (decision 0024), as
tests and bench/failover.py build it:
  standby_of(node, dir)   a second serve host of `node`: a copy of its data directory;
  Balancer(targets)       a round-robin TCP balancer in front of them, as a TCP load
                          balancer (or a DNS name with several addresses) would be: each new
                          connection goes to the next target; a target that refuses gets it
                          reset, and the dialer tries again and reaches the next one. Built on
                          tests.support.proxy.Proxy (its faults work here too);
  leader_pid(node)        the pid of the process that holds the node's lease now, if any."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from pathlib import Path

from node.services import leadership
from tests.support.nodes import TestNode, free_ports
from tests.support.proxy import Proxy

__all__ = ["Balancer", "leader_pid", "standby_of"]


def standby_of(node: TestNode, directory: Path) -> TestNode:
    """A second `serve` host of `node`: a copy of its data directory (node.yaml and keys, as
    an operator copies them to the second host), listening on ports of its own."""
    shutil.copytree(
        node.directory, directory, ignore=shutil.ignore_patterns("serve.log", "serve.lock")
    )
    port, enrollment = free_ports(2)
    text = (directory / "node.yaml").read_text()
    text = text.replace(f'listen: "127.0.0.1:{node.port}"', f'listen: "127.0.0.1:{port}"')
    old = node.ctx().config.server.enrollment_address
    text = text.replace(
        f'enrollment_listen: "{old}"', f'enrollment_listen: "127.0.0.1:{enrollment}"'
    )
    (directory / "node.yaml").write_text(text)
    return TestNode(node.node_id, node.name, directory, port, node.database_url)


def leader_pid(node: TestNode) -> int | None:
    """The pid in the live lease's holder ("host pid N (listen)"), or None."""
    view = leadership.current(node.ctx())
    if view is None or not view.live:
        return None
    return int(view.holder.split(" pid ", 1)[1].split(" ", 1)[0])


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
