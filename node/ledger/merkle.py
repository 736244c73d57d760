"""RFC 6962 / RFC 9162 section 2 Merkle tree over SHA-256: hashes, proofs, append.

Invariants:

- A leaf hash is SHA-256(0x00 || entry); an interior node is SHA-256(0x01 || left || right);
  the root of the empty tree is SHA-256 of the empty string (RFC 9162 section 2.1.1).
- Every hash handled here is exactly 32 bytes. A verifier rejects any other length with
  ProofError before doing any work (docs/decisions/0002-merkle-proof-edge-cases.md).
- Persistence stores only COMPLETE subtrees: node (level, index) is the root of the 2**level
  leaves starting at leaf index * 2**level, and level 0 holds the leaf hashes. A complete
  node never changes once written, so the table of nodes is insert-only like the ledger.
  The incomplete subtrees on the right edge of a tree are never stored; they are folded
  from at most log2(n) + 1 complete ones when needed.
- Proof generation and root computation make O(log n) calls to `NodeReader.node`.
- Verification returns None or raises ProofError; it never returns a bool.
"""

from __future__ import annotations

import hashlib
import hmac
import operator
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import NewType, Protocol

from node.errors import NotFoundError, ProofError, ValidationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompletedNode",
    "Frontier",
    "Hash",
    "LeafHash",
    "MemoryTree",
    "NodeReader",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_leaves",
    "verify_consistency",
    "verify_inclusion",
]

Hash = NewType("Hash", bytes)
"""A 32-byte SHA-256 tree hash: a subtree root, a tree root, or a proof element."""

LeafHash = NewType("LeafHash", Hash)
"""The hash of one log entry, SHA-256(0x00 || entry)."""

CompletedNode = tuple[int, int, Hash]
"""(level, index, hash) of a complete subtree, as `Frontier.append` reports it."""

HASH_SIZE = 32
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

EMPTY_ROOT = Hash(hashlib.sha256(b"").digest())
"""MTH({}) = SHA-256(), the root of the tree of size 0."""


class NodeReader(Protocol):
    """Read access to the persisted complete subtrees of one tree."""

    def node(self, level: int, index: int) -> bytes:
        """Return the root of the complete subtree of 2**level leaves at leaf index * 2**level."""
        ...


def leaf_hash(entry: bytes) -> LeafHash:
    """Return the RFC 6962 leaf hash of one serialized log entry."""
    return LeafHash(Hash(hashlib.sha256(_LEAF_PREFIX + entry).digest()))


def node_hash(left: bytes, right: bytes) -> Hash:
    """Return the RFC 6962 interior node hash of two child hashes."""
    return Hash(hashlib.sha256(_NODE_PREFIX + left + right).digest())


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> Hash:
    """Return MTH(D[n]) by the plain recursive definition of RFC 9162 section 2.1.1.

    This is the reference the incremental code is tested against; it reads every leaf.
    """
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return Hash(bytes(leaf_hashes[0]))
    k = _largest_power_of_two_below(n)
    return node_hash(root_from_leaves(leaf_hashes[:k]), root_from_leaves(leaf_hashes[k:]))


# --- proof generation -------------------------------------------------------------------


def root(size: int, reader: NodeReader) -> Hash:
    """Return the root of the tree of `size` leaves, reading at most log2(size) + 1 nodes."""
    _check_size("tree size", size)
    if size == 0:
        return EMPTY_ROOT
    return _range_hash(reader, 0, size)


def inclusion_proof(index: int, size: int, reader: NodeReader) -> list[Hash]:
    """Return PATH(index, D[size]) of RFC 9162 section 2.1.3.1, leaf sibling first.

    Raises ValidationError unless 0 <= index < size.
    """
    _check_size("tree size", size)
    if not 0 <= index < size:
        raise ValidationError(f"expected a leaf index in [0, {size}), found {index}")
    return [_range_hash(reader, start, end) for start, end in _inclusion_ranges(index, size)]


def consistency_proof(size1: int, size2: int, reader: NodeReader) -> list[Hash]:
    """Return PROOF(size1, D[size2]) of RFC 9162 section 2.1.4.1.

    Outside 0 < size1 < size2 the proof is empty, as the edge-case policy (ADR 0002)
    expects: nothing needs proving when size1 == size2 or size1 == 0.
    Raises ValidationError if size1 > size2.
    """
    _check_size("first tree size", size1)
    _check_size("second tree size", size2)
    if size1 > size2:
        raise ValidationError(f"expected size1 <= size2, found size1={size1} > size2={size2}")
    if size1 == 0 or size1 == size2:
        return []
    return [_range_hash(reader, s, e) for s, e in _consistency_ranges(size1, size2)]


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges [start, end) whose roots form PATH(index, D[size]), leaf sibling first.

    Walks down from the root keeping the sibling of each subtree that holds the leaf;
    the RFC's recursion appends these on the way back up, hence the final reverse.
    """
    ranges: list[tuple[int, int]] = []
    start, n, m = 0, size, index
    while n > 1:
        k = _largest_power_of_two_below(n)
        if m < k:
            ranges.append((start + k, start + n))
            n = k
        else:
            ranges.append((start, start + k))
            start, m, n = start + k, m - k, n - k
    ranges.reverse()
    return ranges


def _consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """Leaf ranges whose roots form PROOF(size1, D[size2]) for 0 < size1 < size2.

    SUBPROOF(m, D[n], b) walked down from the root: `whole` is b, true while the old
    tree is still the left edge of the current subtree (then its root is not sent).
    """
    ranges: list[tuple[int, int]] = []
    start, n, m, whole = 0, size2, size1, True
    while m != n:
        k = _largest_power_of_two_below(n)
        if m <= k:
            ranges.append((start + k, start + n))
            n = k
        else:
            ranges.append((start, start + k))
            start, m, n, whole = start + k, m - k, n - k, False
    if not whole:
        ranges.append((start, start + n))
    ranges.reverse()
    return ranges


def _range_hash(reader: NodeReader, start: int, end: int) -> Hash:
    """Return MTH(D[start:end]) for a range that starts a subtree of the RFC recursion.

    `start` must be a multiple of a power of two >= end - start; every range the
    recursion produces is. The range splits into complete subtrees, largest first, and
    MTH folds them from the right (the RFC splits at the largest power of two below n).
    """
    hashes: list[bytes] = []
    while start < end:
        level = (end - start).bit_length() - 1
        hashes.append(reader.node(level, start >> level))
        start += 1 << level
    return _fold_right(hashes)


def _fold_right(hashes: Sequence[bytes]) -> Hash:
    """Fold complete-subtree roots, largest (leftmost) first, into their tree's root."""
    acc = Hash(bytes(hashes[-1]))
    for left in reversed(hashes[:-1]):
        acc = node_hash(left, acc)
    return acc


# --- verification -----------------------------------------------------------------------


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that `leaf_hash` is leaf `index` of the tree of `size` leaves with `root`.

    Follows RFC 9162 section 2.1.3.2. Returns None or raises ProofError.
    """
    _check_hash_lengths(proof, ("leaf hash", leaf_hash), ("root", root))
    if index < 0 or size < 0:
        raise ProofError(f"expected a non-negative index and size, found {index} and {size}")
    # 1. If leaf_index is greater than or equal to tree_size, fail.
    if index >= size:
        raise ProofError(f"expected a leaf index below the tree size {size}, found {index}")
    # 2. Set fn to leaf_index and sn to tree_size - 1.
    fn, sn = index, size - 1
    # 3. Set r to hash.
    r = bytes(leaf_hash)
    # 4. For each value p in the inclusion_path array:
    for p in proof:
        # 4a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            raise ProofError(_inclusion_length_message(index, size, len(proof)))
        # 4b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            # 4b.i. Set r to HASH(0x01 || p || r).
            r = node_hash(p, r)
            # 4b.ii. If LSB(fn) is not set, then right-shift both fn and sn equally until
            # either LSB(fn) is set or fn is 0.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        # Otherwise: set r to HASH(0x01 || r || p).
        else:
            r = node_hash(r, p)
        # 4c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 5. Compare sn to 0. Compare r against the root_hash. If sn is equal to 0 and r and
    # the root_hash are equal, the log has proven the inclusion of hash.
    if sn != 0:
        raise ProofError(_inclusion_length_message(index, size, len(proof)))
    if not hmac.compare_digest(r, root):
        raise ProofError(
            f"expected the proof for leaf {index} of {size} to lead to root {bytes(root).hex()}, "
            f"found {r.hex()}"
        )


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (size1, root1) is a prefix of the tree (size2, root2).

    Follows RFC 9162 section 2.1.4.2 for 0 < size1 < size2; the cases outside that range
    follow ADR 0002: equal sizes need an empty proof and equal roots, and size1 == 0 needs
    an empty proof and root1 equal to EMPTY_ROOT. Returns None or raises ProofError.
    """
    _check_hash_lengths(proof, ("root1", root1), ("root2", root2))
    if size1 < 0 or size2 < 0:
        raise ProofError(f"expected non-negative sizes, found {size1} and {size2}")
    if size1 > size2:
        raise ProofError(f"expected size1 <= size2, found size1={size1} > size2={size2}")
    if size1 == size2:
        _verify_same_size(size1, root1, root2, proof)
        return
    if size1 == 0:
        _verify_from_empty(size2, root1, proof)
        return
    first_hash, second_hash = bytes(root1), bytes(root2)
    path = [bytes(p) for p in proof]
    # 1. If consistency_path is an empty array, stop and fail the proof verification.
    if not path:
        raise ProofError(_consistency_length_message(size1, size2, len(proof)))
    # 2. If first is an exact power of 2, then prepend first_hash to the consistency_path.
    if size1 & (size1 - 1) == 0:
        path.insert(0, first_hash)
    # 3. Set fn to first - 1 and sn to second - 1.
    fn, sn = size1 - 1, size2 - 1
    # 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. Set both fr and sr to the first value in the consistency_path array.
    fr = sr = path[0]
    # 6. For each subsequent value c in the consistency_path array:
    for c in path[1:]:
        # 6a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            raise ProofError(_consistency_length_message(size1, size2, len(proof)))
        # 6b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            # 6b.i. Set fr to HASH(0x01 || c || fr).  6b.ii. Set sr to HASH(0x01 || c || sr).
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # 6b.iii. If LSB(fn) is not set, then right-shift both fn and sn equally until
            # either LSB(fn) is set or fn is 0.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        # Otherwise: set sr to HASH(0x01 || sr || c).
        else:
            sr = node_hash(sr, c)
        # 6c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 7. Verify that fr equals first_hash, that sr equals second_hash, and that sn is 0.
    if sn != 0:
        raise ProofError(_consistency_length_message(size1, size2, len(proof)))
    for name, want, got in (("root1", first_hash, fr), ("root2", second_hash, sr)):
        if not hmac.compare_digest(got, want):
            raise ProofError(
                f"expected the proof to lead to {name} {want.hex()}, found {got.hex()}"
            )


def _verify_same_size(size: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """ADR 0002: a tree is consistent with itself; the proof is empty, the roots equal."""
    if proof:
        raise ProofError(f"expected an empty proof for equal sizes {size}, found {len(proof)}")
    if not hmac.compare_digest(root1, root2):
        raise ProofError(f"expected equal roots for equal sizes {size}, found two different")
    if size == 0 and not hmac.compare_digest(root1, EMPTY_ROOT):
        raise ProofError(f"expected the empty-tree root for size 0, found {bytes(root1).hex()}")


def _verify_from_empty(size2: int, root1: bytes, proof: Sequence[bytes]) -> None:
    """ADR 0002: the empty tree is a prefix of every tree; nothing is left to prove."""
    if proof:
        raise ProofError(f"expected an empty proof from size 0 to {size2}, found {len(proof)}")
    if not hmac.compare_digest(root1, EMPTY_ROOT):
        raise ProofError(f"expected the empty-tree root1 for size 0, found {bytes(root1).hex()}")


def _check_hash_lengths(proof: Sequence[bytes], *named: tuple[str, bytes]) -> None:
    for name, value in [*named, *((f"proof[{i}]", p) for i, p in enumerate(proof))]:
        if len(value) != HASH_SIZE:
            raise ProofError(f"expected {name} to be {HASH_SIZE} bytes, found {len(value)}")


def _inclusion_length_message(index: int, size: int, found: int) -> str:
    want = len(_inclusion_ranges(index, size))
    return f"expected {want} proof hashes for leaf {index} of {size}, found {found}"


def _consistency_length_message(size1: int, size2: int, found: int) -> str:
    want = len(_consistency_ranges(size1, size2))
    return f"expected {want} proof hashes from size {size1} to {size2}, found {found}"


# --- appending --------------------------------------------------------------------------


class Frontier:
    """The compact range of a tree's right edge: its complete-subtree roots, largest first.

    For a tree of n leaves there is one root per set bit of n, so the frontier holds at
    most log2(n) + 1 hashes and is enough to append and to compute the root.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        """Make the frontier of a tree of `size` leaves from its complete-subtree roots."""
        _check_size("tree size", size)
        stored = [Hash(bytes(h)) for h in hashes]
        if len(stored) != size.bit_count():
            raise ValidationError(
                f"expected {size.bit_count()} subtree roots for size {size}, found {len(stored)}"
            )
        for i, h in enumerate(stored):
            if len(h) != HASH_SIZE:
                raise ValidationError(f"expected hash {i} to be {HASH_SIZE} bytes, found {len(h)}")
        self._size = size
        self._hashes = stored

    @classmethod
    def from_reader(cls, size: int, reader: NodeReader) -> Frontier:
        """Rebuild the frontier of the first `size` leaves, reading one node per set bit."""
        _check_size("tree size", size)
        hashes: list[bytes] = []
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                hashes.append(reader.node(level, start >> level))
                start += 1 << level
        return cls(size, hashes)

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> tuple[Hash, ...]:
        """The complete-subtree roots of the right edge, largest (leftmost) first."""
        return tuple(self._hashes)

    def root(self) -> Hash:
        """Return the root of the tree of `size` leaves."""
        if not self._hashes:
            return EMPTY_ROOT
        return _fold_right(self._hashes)

    def append(self, leaf_hash: bytes) -> list[CompletedNode]:
        """Append one leaf; return every node this completes, leaf first, to persist.

        The leaf itself is node (0, old size). Each further node is the parent of the
        previous one, produced while the new subtree is a right child: amortised O(1),
        at most log2(n) + 1 nodes.
        """
        if len(leaf_hash) != HASH_SIZE:
            raise ValidationError(
                f"expected a leaf hash of {HASH_SIZE} bytes, found {len(leaf_hash)}"
            )
        level, index = 0, self._size
        acc = Hash(bytes(leaf_hash))
        completed: list[CompletedNode] = [(level, index, acc)]
        while index & 1:
            acc = node_hash(self._hashes.pop(), acc)
            level, index = level + 1, index >> 1
            completed.append((level, index, acc))
        self._hashes.append(acc)
        self._size += 1
        return completed

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append leaves in order like `append`, without listing the nodes they complete.

        For verifiers, which keep only the frontier: the same hashes, less work per leaf.
        The leaves go in as the largest complete subtrees the tree's size allows, each
        hashed level by level (`_subtree_root`), then joined to the frontier as `append`
        joins a leaf.
        """
        leaves = [h if type(h) is bytes else bytes(h) for h in leaf_hashes]
        if any(map(HASH_SIZE.__ne__, map(len, leaves))):
            i, found = next((i, len(h)) for i, h in enumerate(leaves) if len(h) != HASH_SIZE)
            raise ValidationError(f"expected leaf hash {i} to be {HASH_SIZE} bytes, found {found}")
        start = 0
        while start < len(leaves):
            # The largest 2**level leaves that fit and start a subtree at the current size.
            level = (len(leaves) - start).bit_length() - 1
            if self._size:
                level = min(level, (self._size & -self._size).bit_length() - 1)
            acc = _subtree_root(leaves[start : start + (1 << level)])
            index = self._size >> level
            while index & 1:
                acc = node_hash(self._hashes.pop(), acc)
                index >>= 1
            self._hashes.append(acc)
            self._size += 1 << level
            start += 1 << level

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, root={self.root().hex()})"


class MemoryTree:
    """An in-memory tree: a NodeReader over every complete node, plus its frontier.

    For tests and small uses; a node's ledger persists the nodes `append` returns instead.
    """

    __slots__ = ("_frontier", "_levels")

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        """Make a tree holding `leaf_hashes` in order."""
        self._levels: list[list[Hash]] = []
        self._frontier = Frontier()
        for h in leaf_hashes:
            self.append(h)

    @property
    def size(self) -> int:
        """Number of leaves in the tree."""
        return self._frontier.size

    def append(self, leaf_hash: bytes) -> list[CompletedNode]:
        """Append one leaf hash; return the nodes it completed (see Frontier.append)."""
        completed = self._frontier.append(leaf_hash)
        for level, _index, h in completed:
            if level == len(self._levels):
                self._levels.append([])
            # Nodes complete left to right within a level: the index is the next slot.
            self._levels[level].append(h)
        return completed

    def node(self, level: int, index: int) -> Hash:
        """Return complete node (level, index); NotFoundError if it is not complete yet."""
        if 0 <= level < len(self._levels) and 0 <= index < len(self._levels[level]):
            return self._levels[level][index]
        raise NotFoundError(
            f"expected a complete node, found none at level {level} index {index} "
            f"in a tree of size {self.size}"
        )

    def root(self, size: int | None = None) -> Hash:
        """Return the root of the first `size` leaves (default: all)."""
        return self._frontier.root() if size is None else root(self._bounded(size), self)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[Hash]:
        """Return the inclusion proof of leaf `index` in the first `size` leaves."""
        return inclusion_proof(index, self.size if size is None else self._bounded(size), self)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[Hash]:
        """Return the consistency proof from the first `size1` to the first `size2` leaves."""
        return consistency_proof(size1, self.size if size2 is None else self._bounded(size2), self)

    def _bounded(self, size: int) -> int:
        if size > self.size:
            raise ValidationError(f"expected a size of at most {self.size}, found {size}")
        return size


def _subtree_root(leaf_hashes: list[bytes]) -> Hash:
    """MTH of 2**k leaf hashes, hashed a level at a time: the loops run in C (map), so
    each interior node costs one SHA-256 and no Python bytecode."""
    level = leaf_hashes
    while len(level) > 1:
        joined = map(
            bytes.__add__, map(bytes.__add__, repeat(_NODE_PREFIX), level[0::2]), level[1::2]
        )
        level = list(map(_digest, map(hashlib.sha256, joined)))
    return Hash(level[0])


_digest = operator.methodcaller("digest")


def _check_size(name: str, size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValidationError(f"expected {name} to be a non-negative integer, found {size!r}")


def _largest_power_of_two_below(n: int) -> int:
    """Return the largest power of two strictly less than n (n > 1), the RFC's k."""
    return 1 << ((n - 1).bit_length() - 1)
