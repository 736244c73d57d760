"""Real nodes for the harnesses that need a database: a parent and a child on SQLite in a
temporary folder, pinned to each other as `link add` does."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fuzz._harness import Loop
from node.services import links
from node.services.context import NodeContext
from node.services.setup import init_node

__all__ = ["Pair", "PairOnLoop", "linked_pair", "pair_on_loop"]


@dataclass(frozen=True)
class Pair:
    parent: NodeContext
    child: NodeContext


@contextlib.contextmanager
def linked_pair(folder: Path) -> Iterator[Pair]:
    made: list[NodeContext] = []
    try:
        for node_id, name, port in (("id-64", "Provinsi", 17464), ("id-64-02", "Kabupaten", 17474)):
            path = init_node(
                folder / node_id,
                node_id,
                name,
                listen=f"127.0.0.1:{port}",
                database_url=f"sqlite:///{folder / node_id / 'node.db'}",
            )
            made.append(NodeContext.open(path))
        parent, child = made
        links.add_link(parent, links.own_card(child), "child")
        links.add_link(child, links.own_card(parent), "parent", "127.0.0.1:17464")
        yield Pair(parent, child)
    finally:
        for ctx in made:
            ctx.close()


@dataclass(frozen=True)
class PairOnLoop:
    """A linked pair and the one event loop a harness runs its async targets on."""

    pair: Pair
    loop: Loop


@contextlib.contextmanager
def pair_on_loop(folder: Path) -> Iterator[PairOnLoop]:
    with linked_pair(folder) as pair, Loop.open() as loop:
        yield PairOnLoop(pair, loop)
