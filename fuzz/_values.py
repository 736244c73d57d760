"""Strategies for the values fuzzing leans on: integers at the edges of every width a
field or a database column has, timestamps out of the calendar, text with control
characters, and bytes."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

__all__ = ["edge_ints", "mostly", "node_ids", "short_bytes", "texts", "timestamps", "u32", "u64"]

_EDGES = [0, 1, 2, 255, 256, (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32]
_EDGES += [(1 << 53) + 1, (1 << 62), (1 << 63) - 1, 1 << 63, (1 << 64) - 1]


def u64() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(_EDGES), st.integers(0, (1 << 64) - 1), st.integers(0, 50))


def u32() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([0, 1, (1 << 31), (1 << 32) - 1]), st.integers(0, 1 << 20))


def edge_ints() -> st.SearchStrategy[int]:
    """Signed 64-bit, as a Timestamp's seconds or an int64 field."""
    return st.one_of(
        st.sampled_from([0, -1, -(1 << 63), (1 << 63) - 1, 253402300799, 253402300800]),
        st.integers(-(1 << 63), (1 << 63) - 1),
        st.integers(1_700_000_000, 1_900_000_000),
    )


def timestamps() -> st.SearchStrategy[tuple[int, int]]:
    """(seconds, nanos) of a google.protobuf.Timestamp, in and out of its range."""
    return st.tuples(
        edge_ints(),
        st.one_of(st.just(0), st.integers(-(1 << 31), (1 << 31) - 1)),
    )


def texts(max_size: int = 80) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=max_size),
        st.sampled_from(["", " ", "\x00", "id-64-02", "[/]", "\x1b[2J", "e" * 32, "é" * 3]),
    )


def node_ids() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["id-64", "id-64-02", "id", "ID", ""]), texts(70))


def short_bytes(max_size: int = 96) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=max_size), st.sampled_from([b"", b"\x00" * 32]))


def mostly(value: Any, other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`value` four times in five, else `other`: the checks after this field are reached."""
    return st.integers(0, 4).flatmap(lambda n: other if n == 0 else st.just(value))
