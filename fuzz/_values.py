"""Strategies for the values fuzzing leans on: integers at the edges of every width a
field or a database column has, timestamps out of the calendar, text with control
characters, and bytes.

Each factory returns the same strategy object for the same arguments (they are cached):
hypothesis validates a strategy and works out its labels the first time it draws from
it, so a strategy built afresh inside a composite for every input costs that work again
for every input (it was most of a harness's time per input). Harnesses build their
strategies once, at import, for the same reason.
"""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import strategies as st

__all__ = ["edge_ints", "mostly", "node_ids", "short_bytes", "texts", "timestamps", "u32", "u64"]

_EDGES = [0, 1, 2, 255, 256, (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32]
_EDGES += [(1 << 53) + 1, (1 << 62), (1 << 63) - 1, 1 << 63, (1 << 64) - 1]

_ONE_IN_FIVE = st.integers(0, 4)


@functools.cache
def u64() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(_EDGES), st.integers(0, (1 << 64) - 1), st.integers(0, 50))


@functools.cache
def u32() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([0, 1, (1 << 31), (1 << 32) - 1]), st.integers(0, 1 << 20))


@functools.cache
def edge_ints() -> st.SearchStrategy[int]:
    """Signed 64-bit, as a Timestamp's seconds or an int64 field."""
    return st.one_of(
        st.sampled_from([0, -1, -(1 << 63), (1 << 63) - 1, 253402300799, 253402300800]),
        st.integers(-(1 << 63), (1 << 63) - 1),
        st.integers(1_700_000_000, 1_900_000_000),
    )


@functools.cache
def timestamps() -> st.SearchStrategy[tuple[int, int]]:
    """(seconds, nanos) of a google.protobuf.Timestamp, in and out of its range."""
    return st.tuples(
        edge_ints(),
        st.one_of(st.just(0), st.integers(-(1 << 31), (1 << 31) - 1)),
    )


@functools.cache
def texts(max_size: int = 80) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=max_size),
        st.sampled_from(["", " ", "\x00", "id-64-02", "[/]", "\x1b[2J", "e" * 32, "é" * 3]),
    )


@functools.cache
def node_ids() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["id-64", "id-64-02", "id", "ID", ""]), texts(70))


@functools.cache
def short_bytes(max_size: int = 96) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=max_size), st.sampled_from([b"", b"\x00" * 32]))


@st.composite
def _mostly(draw: st.DrawFn, value: Any, other: st.SearchStrategy[Any]) -> Any:
    return draw(other) if draw(_ONE_IN_FIVE) == 0 else value


@functools.lru_cache(maxsize=None, typed=True)  # typed: mostly(1, s) is not mostly(True, s)
def mostly(value: Any, other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`value` four times in five, else `other`: the checks after this field are reached.
    (`value` must be hashable: the strategy is cached.)"""
    return _mostly(value, other)
