"""C2SP tlog-tiles (c2sp.org/tlog-tiles): tile coordinates, their paths, and which nodes of
the persisted RFC 6962 tree a tile holds.

Pure: numbers and bytes in and out; no database, no HTTP.

Invariants (tlog-tiles, "Merkle Tree" and "Partial Tiles"):

1. Hash i of tile (level L, index N) is MTH(D[(N*256 + i) * 256**L : (N*256 + i + 1) *
   256**L]): exactly the complete subtree (tree level 8*L, index N*256 + i) that
   node.ledger.merkle persists. A tile is therefore a run of stored nodes, never a
   computation over leaves.
2. A tile of width W exists for a tree of size s iff 1 <= W <= 256 and
   (N*256 + W) * 256**L <= s: every hash it holds is complete within s. The partial tile
   that a checkpoint of size s requires at level L has width floor(s / 256**L) mod 256.
3. Paths are `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`, N in zero-padded
   3-digit groups, all but the last prefixed with `x`; `.p/<W>` only for 1 <= W <= 255.
   `parse_path` accepts exactly the paths `Tile.path` writes.
4. An entry bundle is each entry prefixed by its length as a big-endian uint16.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from node.errors import TooLargeError, ValidationError

__all__ = [
    "ENTRIES",
    "HASH_SIZE",
    "MAX_ENTRY_SIZE",
    "MAX_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "Tile",
    "encode_bundle",
    "encode_index",
    "parse_path",
    "split_bundle",
    "tiles_for_size",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
HASH_SIZE = 32
MAX_LEVEL = 63
ENTRIES = "entries"
"""The level name of entry bundles in paths (`tile/entries/...`)."""
MAX_ENTRY_SIZE = 0xFFFF
"""Largest entry a bundle can carry (its length prefix is a uint16)."""

_PATH = re.compile(r"tile/(0|[1-9][0-9]?|entries)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([1-9][0-9]*))?")


@dataclass(frozen=True)
class Tile:
    """Tile (level, index) of `width` hashes (or entries, for a bundle: level None)."""

    level: int | None
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if self.level is not None and not 0 <= self.level <= MAX_LEVEL:
            raise ValidationError(f"expected a tile level in [0, {MAX_LEVEL}], found {self.level}")
        if self.index < 0:
            raise ValidationError(f"expected a tile index >= 0, found {self.index}")
        if not 1 <= self.width <= TILE_WIDTH:
            raise ValidationError(f"expected a tile width in [1, {TILE_WIDTH}], found {self.width}")

    @property
    def is_bundle(self) -> bool:
        return self.level is None

    @property
    def is_partial(self) -> bool:
        return self.width < TILE_WIDTH

    @property
    def tree_level(self) -> int:
        """The level, in the persisted tree, of the nodes this tile lists (invariant 1)."""
        return TILE_HEIGHT * (self.level or 0)

    @property
    def first_node(self) -> int:
        """The index, at `tree_level`, of the tile's first hash."""
        return self.index * TILE_WIDTH

    @property
    def end_leaf(self) -> int:
        """One past the last leaf the tile's hashes cover: the smallest tree holding it."""
        return (self.first_node + self.width) << self.tree_level

    def exists_in(self, size: int) -> bool:
        """Whether a tree of `size` leaves holds this tile (invariant 2)."""
        return self.end_leaf <= size

    def path(self) -> str:
        """`tile/<L>/<N>[.p/<W>]`, or `tile/entries/<N>[.p/<W>]` for a bundle."""
        level = ENTRIES if self.level is None else str(self.level)
        suffix = f".p/{self.width}" if self.is_partial else ""
        return f"tile/{level}/{encode_index(self.index)}{suffix}"

    def byte_size(self) -> int:
        """The size of a hash tile of this width (bundles vary)."""
        return self.width * HASH_SIZE


def encode_index(index: int) -> str:
    """N as zero-padded 3-digit groups, all but the last prefixed with x: 1234067 ->
    x001/x234/067."""
    if index < 0:
        raise ValidationError(f"expected a tile index >= 0, found {index}")
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(groups))


def parse_path(path: str) -> Tile:
    """The tile a request path names (without the URL prefix); ValidationError for any path
    that `Tile.path` would not write."""
    match = _PATH.fullmatch(path)
    if match is None:
        raise ValidationError(f"expected tile/<L>/<N>[.p/<W>], found {path[:80]!r}")
    level_text, index_text, width_text = match.groups()
    groups = index_text.split("/")
    # One spelling per index: no leading all-zero group (x000/001 would be 1 again).
    if len(groups) > 1 and groups[0] == "x000":
        raise ValidationError(f"expected no leading x000 group, found {path[:80]!r}")
    if len(groups) > 7:  # more than 2**64: no tree is that large
        raise ValidationError(f"expected a tile index below 2**64, found {path[:80]!r}")
    index = int("".join(g.lstrip("x") for g in groups))
    width = TILE_WIDTH
    if width_text is not None:
        width = int(width_text)
        if width >= TILE_WIDTH:
            raise ValidationError(f"expected a partial width in [1, 255], found {width}")
    level = None if level_text == ENTRIES else int(level_text)
    return Tile(level, index, width)


def tiles_for_size(size: int, *, bundles: bool = False) -> Iterator[Tile]:
    """Every tile (full ones, then the partial one, level by level) that a tree of `size`
    leaves is served as; with `bundles`, the entry bundles as well (after level 0)."""
    if size < 0:
        raise ValidationError(f"expected a tree size >= 0, found {size}")
    level = 0
    while size >> (TILE_HEIGHT * level):
        nodes = size >> (TILE_HEIGHT * level)
        full, partial = divmod(nodes, TILE_WIDTH)
        kinds: list[int | None] = [level] + ([None] if bundles and level == 0 else [])
        for kind in kinds:
            for n in range(full):
                yield Tile(kind, n)
            if partial:
                yield Tile(kind, full, partial)
        level += 1


def encode_bundle(entries: Iterable[bytes]) -> bytes:
    """An entry bundle: each entry prefixed by its big-endian uint16 length (invariant 4)."""
    parts: list[bytes] = []
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise TooLargeError(
                f"expected an entry of at most {MAX_ENTRY_SIZE} bytes for an entry bundle, "
                f"found {len(entry)}"
            )
        parts.append(struct.pack(">H", len(entry)))
        parts.append(entry)
    return b"".join(parts)


def split_bundle(data: bytes) -> list[bytes]:
    """The entries of a bundle; ValidationError if a length runs past its end."""
    entries: list[bytes] = []
    at = 0
    while at < len(data):
        if at + 2 > len(data):
            raise ValidationError(f"expected a 2-byte length at offset {at}, found the end")
        (length,) = struct.unpack_from(">H", data, at)
        at += 2
        if at + length > len(data):
            raise ValidationError(
                f"expected {length} entry bytes at offset {at}, found {len(data) - at}"
            )
        entries.append(data[at : at + length])
        at += length
    return entries
