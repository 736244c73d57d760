"""C2SP tlog-tiles coordinates, paths and bundles (node.transparency.tiles), checked against
the spec's own examples and its formal definition of a tile."""

from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import TooLargeError, ValidationError
from node.ledger.merkle import MemoryTree, leaf_hash, root_from_leaves
from node.transparency.tiles import (
    Tile,
    encode_bundle,
    encode_index,
    parse_path,
    split_bundle,
    tiles_for_size,
)


@pytest.mark.parametrize(
    ("index", "encoded"),
    [
        pytest.param(1234067, "x001/x234/067", id="the spec's example"),
        pytest.param(0, "000", id="zero"),
        pytest.param(999, "999", id="one group"),
        pytest.param(1000, "x001/000", id="two groups"),
        pytest.param(1000000, "x001/x000/000", id="inner zero group"),
    ],
)
def test_index_is_encoded_in_x_prefixed_groups(index: int, encoded: str) -> None:
    """N is written as zero-padded 3-digit groups, all but the last prefixed with x."""
    assert encode_index(index) == encoded
    assert parse_path(f"tile/0/{encoded}") == Tile(0, index)


@pytest.mark.parametrize(
    ("tile", "path"),
    [
        pytest.param(Tile(0, 0), "tile/0/000", id="full level 0"),
        pytest.param(Tile(1, 5, 17), "tile/1/005.p/17", id="partial level 1"),
        pytest.param(Tile(None, 1234067), "tile/entries/x001/x234/067", id="full bundle"),
        pytest.param(Tile(None, 3, 255), "tile/entries/003.p/255", id="partial bundle"),
        pytest.param(Tile(63, 1), "tile/63/001", id="top level"),
    ],
)
def test_paths_round_trip(tile: Tile, path: str) -> None:
    """Tile.path writes the spec's path, and parse_path reads it back."""
    assert tile.path() == path
    assert parse_path(path) == tile


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("tile/0/1", id="short group"),
        pytest.param("tile/00/000", id="level with a leading zero"),
        pytest.param("tile/64/000", id="level above 63"),
        pytest.param("tile/0/000.p/0", id="width 0"),
        pytest.param("tile/0/000.p/256", id="width 256 as partial"),
        pytest.param("tile/0/000.p/07", id="width with a leading zero"),
        pytest.param("tile/0/x000/001", id="leading zero group"),
        pytest.param("tile/0/001/002", id="inner group without x"),
        pytest.param("tile/0/x001", id="last group with x"),
        pytest.param("tile/data/000", id="Go's data level"),
        pytest.param("tile/8/0/000", id="Go's path with the height"),
        pytest.param("tile/0/000/", id="trailing slash"),
    ],
)
def test_other_spellings_are_refused(path: str) -> None:
    """Only the one spelling Tile.path writes is a tile; anything else is refused."""
    with pytest.raises(ValidationError):
        parse_path(path)


def _counts(size: int) -> Counter[tuple[int | None, bool, int]]:
    return Counter((t.level, t.is_partial, t.width) for t in tiles_for_size(size, bundles=True))


def test_the_specs_size_70000_example() -> None:
    """Size 70,000: 273 full level-0 tiles and a partial of width 112, one full level-1 tile
    and a partial of width 17, a partial level-2 tile of width 1 (and the bundles of level 0)."""
    assert _counts(70000) == Counter(
        {
            (0, False, 256): 273,
            (0, True, 112): 1,
            (None, False, 256): 273,
            (None, True, 112): 1,
            (1, False, 256): 1,
            (1, True, 17): 1,
            (2, True, 1): 1,
        }
    )


def test_the_specs_size_256_example() -> None:
    """Size 256: one full level-0 tile (and bundle) and a partial level-1 tile of width 1."""
    assert list(tiles_for_size(256, bundles=True)) == [
        Tile(0, 0),
        Tile(None, 0),
        Tile(1, 0, 1),
    ]


def test_an_empty_tree_has_no_tiles() -> None:
    """Empty tiles are never served: size 0 has none."""
    assert list(tiles_for_size(0, bundles=True)) == []


@settings(max_examples=30, deadline=None, database=None)
@given(size=st.integers(1, 70000))
def test_the_listed_tiles_are_exactly_those_that_exist(size: int) -> None:
    """Each tile listed for a size exists in it; a partial one could be no wider, and the
    next full tile exists only if it is listed too."""
    listed = set(tiles_for_size(size, bundles=True))
    for tile in listed:
        assert tile.exists_in(size)
        if tile.is_partial:
            assert not Tile(tile.level, tile.index, tile.width + 1).exists_in(size)
        else:
            after = Tile(tile.level, tile.index + 1)
            assert after.exists_in(size) == (after in listed)


def test_tile_hashes_are_the_specs_subtree_hashes() -> None:
    """Hash i of tile (l, n) is MTH(D[(n*256+i)*256**l : (n*256+i+1)*256**l]) (the spec's
    formal definition), and it is the stored node the tile names."""
    leaves = [leaf_hash(os.urandom(8)) for _ in range(256 * 3 + 7)]
    tree = MemoryTree(leaves)
    for tile in tiles_for_size(len(leaves)):
        assert tile.level is not None
        span = 256**tile.level
        for i in range(tile.width):
            start = (tile.index * 256 + i) * span
            expected = root_from_leaves(leaves[start : start + span])
            assert tree.node(tile.tree_level, tile.first_node + i) == expected


def test_bundles_are_length_prefixed_entries() -> None:
    """A bundle is each entry after its big-endian uint16 length, and splits back."""
    entries = [b"", b"a", bytes(300), bytes(range(256)) * 255]
    data = encode_bundle(entries)
    assert data[:5] == b"\x00\x00\x00\x01a"
    assert data[5:7] == (300).to_bytes(2, "big")
    assert split_bundle(data) == entries


def test_an_entry_too_large_for_a_bundle_is_refused() -> None:
    """An entry over 65535 bytes cannot be length-prefixed: refused, not truncated."""
    with pytest.raises(TooLargeError):
        encode_bundle([bytes(65536)])


def test_a_truncated_bundle_is_refused() -> None:
    """A length that runs past the end of the bundle is refused."""
    with pytest.raises(ValidationError):
        split_bundle(b"\x00\x05abc")


@settings(max_examples=300, deadline=None, database=None)
@given(path=st.text(alphabet="tile/entris0123456789x.p", max_size=40))
def test_any_path_parses_to_its_own_spelling_or_is_refused(path: str) -> None:
    """Whatever a client asks for, parse_path returns the tile whose path it is, or
    raises ValidationError; nothing else escapes."""
    try:
        tile = parse_path(path)
    except ValidationError:
        return
    assert tile.path() == path
