"""C2SP tlog-checkpoint bodies, node origins, and the guard against inconsistent checkpoints."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import InconsistentCheckpointError, ProofError, ValidationError
from node.ledger.checkpoint import MAX_TREE_SIZE, Checkpoint, check_extends, origin_for
from node.ledger.merkle import EMPTY_ROOT, MemoryTree, leaf_hash

DATA = Path(__file__).resolve().parent / "data"
ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode()
ORIGIN = "lapor-node/id-64"

lines = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n", min_codepoint=0x20),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None, database=None)
@given(
    origin=lines,
    size=st.integers(0, MAX_TREE_SIZE),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(lines, max_size=3).map(tuple),
)
def test_body_round_trips(origin: str, size: int, root: bytes, extensions: tuple[str, ...]) -> None:
    """parse(to_body(cp)) == cp for every valid checkpoint."""
    cp = Checkpoint(origin, size, root, extensions)
    assert Checkpoint.parse(cp.to_body()) == cp


def test_body_layout() -> None:
    """The body is origin, decimal size, base64 root and extensions, each ending in newline."""
    cp = Checkpoint(ORIGIN, 20852163, ROOT, ("ext one",))
    assert cp.to_body() == f"{ORIGIN}\n20852163\n{ROOT_B64}\next one\n".encode()
    assert Checkpoint(ORIGIN, 0, EMPTY_ROOT).to_body().split(b"\n")[1] == b"0"


def test_parses_the_tlog_checkpoint_spec_example() -> None:
    """The body of the example in c2sp.org/tlog-checkpoint parses to its stated fields."""
    example = json.loads((DATA / "c2sp-tlog-checkpoint.json").read_text(encoding="utf-8"))
    body = example["body"].encode()
    cp = Checkpoint.parse(body)
    assert (cp.origin, cp.size, cp.extensions) == (example["origin"], example["size"], ())
    assert cp.root == base64.b64decode(example["root"])
    assert cp.to_body() == body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"", "end in a newline", id="empty"),
        pytest.param(
            f"{ORIGIN}\n1\n{ROOT_B64}".encode(), "end in a newline", id="no-final-newline"
        ),
        pytest.param(f"{ORIGIN}\n1\n".encode(), "at least 3", id="two-lines"),
        pytest.param(f"\n1\n{ROOT_B64}\n".encode(), "non-empty origin", id="empty-origin"),
        pytest.param(
            f"{ORIGIN}\n01\n{ROOT_B64}\n".encode(), "canonical decimal", id="leading-zero"
        ),
        pytest.param(f"{ORIGIN}\n00\n{ROOT_B64}\n".encode(), "canonical decimal", id="double-zero"),
        pytest.param(f"{ORIGIN}\n+1\n{ROOT_B64}\n".encode(), "canonical decimal", id="plus-sign"),
        pytest.param(f"{ORIGIN}\n-1\n{ROOT_B64}\n".encode(), "canonical decimal", id="negative"),
        pytest.param(f"{ORIGIN}\n 1\n{ROOT_B64}\n".encode(), "canonical decimal", id="space"),
        pytest.param(f"{ORIGIN}\n1_0\n{ROOT_B64}\n".encode(), "canonical decimal", id="underscore"),
        pytest.param(
            f"{ORIGIN}\n\u0661\n{ROOT_B64}\n".encode(), "canonical decimal", id="arabic-1"
        ),
        pytest.param(f"{ORIGIN}\n0x1\n{ROOT_B64}\n".encode(), "canonical decimal", id="hex"),
        pytest.param(f"{ORIGIN}\n\n{ROOT_B64}\n".encode(), "canonical decimal", id="empty-size"),
        pytest.param(f"{ORIGIN}\n{2**63}\n{ROOT_B64}\n".encode(), "2\\*\\*63", id="size-2-63"),
        pytest.param(f"{ORIGIN}\n{'9' * 400}\n{ROOT_B64}\n".encode(), "2\\*\\*63", id="huge-size"),
        pytest.param(
            f"{ORIGIN}\n1\n{base64.b64encode(ROOT[:31]).decode()}\n".encode(),
            "32 bytes",
            id="root-31-bytes",
        ),
        pytest.param(
            f"{ORIGIN}\n1\n{base64.b64encode(ROOT + b'x').decode()}\n".encode(),
            "32 bytes",
            id="root-33-bytes",
        ),
        pytest.param(f"{ORIGIN}\n1\n{ROOT_B64[:-1]}\n".encode(), "base64", id="root-no-padding"),
        pytest.param(f"{ORIGIN}\n1\n{ROOT_B64[:-2]}9=\n".encode(), "canonical", id="root-pad-bits"),
        pytest.param(
            f"{ORIGIN}\n1\n{base64.urlsafe_b64encode(bytes([0xFF] * 32)).decode()}\n".encode(),
            "base64",
            id="root-urlsafe",
        ),
        pytest.param(f"{ORIGIN}\n1\n {ROOT_B64}\n".encode(), "base64", id="root-space"),
        pytest.param(f"{ORIGIN}\n1\n{ROOT_B64}\n\n".encode(), "non-empty extension", id="blank"),
        pytest.param(f"{ORIGIN}\n1\n{ROOT_B64}\n\nx\n".encode(), "non-empty extension", id="gap"),
        pytest.param(f"{ORIGIN}\r\n1\r\n{ROOT_B64}\r\n".encode(), "canonical decimal", id="crlf"),
        pytest.param(f"{ORIGIN}\t\n1\n{ROOT_B64}\n".encode(), "control", id="tab-in-origin"),
        pytest.param(b"lapor-node/\xff\n1\n" + ROOT_B64.encode() + b"\n", "UTF-8", id="not-utf8"),
    ],
)
def test_parse_rejects_malformed_bodies(body: bytes, message: str) -> None:
    """Checkpoint.parse accepts only canonical bodies and says what it expected."""
    with pytest.raises(ValidationError, match=message):
        Checkpoint.parse(body)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"size": -1}, "tree size in", id="negative-size"),
        pytest.param({"size": MAX_TREE_SIZE + 1}, "tree size in", id="size-too-large"),
        pytest.param({"size": True}, "integer tree size", id="bool-size"),
        pytest.param({"root": ROOT[:31]}, "32 bytes", id="short-root"),
        pytest.param({"root": ROOT_B64}, "32 bytes", id="root-as-text"),
        pytest.param({"origin": ""}, "non-empty origin", id="empty-origin"),
        pytest.param({"origin": "a\nb"}, "control", id="newline-in-origin"),
        pytest.param({"extensions": ("",)}, "non-empty extension", id="empty-extension"),
        pytest.param({"extensions": ("a\nb",)}, "control", id="newline-in-extension"),
        pytest.param({"extensions": ["x"]}, "tuple", id="extensions-list"),
    ],
)
def test_constructor_rejects_invalid_fields(kwargs: dict[str, object], message: str) -> None:
    """A Checkpoint cannot hold a value its body could not encode unambiguously."""
    fields: dict[str, object] = {"origin": ORIGIN, "size": 1, "root": ROOT, **kwargs}
    with pytest.raises(ValidationError, match=message):
        Checkpoint(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("node_id", ["id", "id-64", "id-64-02", "0", "a" * 63])
def test_origin_for_valid_node_ids(node_id: str) -> None:
    """A node's origin is lapor-node/<node_id>."""
    assert origin_for(node_id) == f"lapor-node/{node_id}"


@pytest.mark.parametrize(
    "node_id", ["", "ID", "-id", "id_64", "id/64", "id 64", "id\n", "a" * 64, "ïd"]
)
def test_origin_for_rejects_invalid_node_ids(node_id: str) -> None:
    """Node ids outside ^[a-z0-9][a-z0-9-]{0,62}$ (whole string) are refused."""
    with pytest.raises(ValidationError, match="node id"):
        origin_for(node_id)


# --- check_extends ----------------------------------------------------------------------

TREE = MemoryTree(leaf_hash(i.to_bytes(2, "big")) for i in range(13))


def _cp(size: int, origin: str = ORIGIN) -> Checkpoint:
    return Checkpoint(origin, size, TREE.root(size))


@pytest.mark.parametrize(("size1", "size2"), [(0, 0), (0, 13), (5, 5), (5, 13), (12, 13), (1, 2)])
def test_check_extends_accepts_a_grown_consistent_tree(size1: int, size2: int) -> None:
    """A checkpoint that extends the previous one, with its proof, may be signed."""
    check_extends(_cp(size1), _cp(size2), TREE.consistency_proof(size1, size2))


def test_check_extends_accepts_a_first_checkpoint() -> None:
    """With no previous checkpoint there is nothing to contradict."""
    check_extends(None, _cp(13), [])
    with pytest.raises(ValidationError, match="no proof"):
        check_extends(None, _cp(13), TREE.consistency_proof(5, 13))


def test_check_extends_refuses_another_origin() -> None:
    """A checkpoint of another log never extends this one."""
    with pytest.raises(InconsistentCheckpointError, match="origin"):
        check_extends(_cp(5), _cp(13, origin="lapor-node/id-64-02"), TREE.consistency_proof(5, 13))


def test_check_extends_refuses_a_smaller_tree() -> None:
    """A log never shrinks."""
    with pytest.raises(InconsistentCheckpointError, match="at least 13"):
        check_extends(_cp(13), _cp(5), [])


def test_check_extends_refuses_a_fork() -> None:
    """Two different roots for one size, or a bad proof, are inconsistent, from ProofError."""
    forked = Checkpoint(ORIGIN, 5, leaf_hash(b"other history"))
    with pytest.raises(InconsistentCheckpointError, match="equal roots") as same_size:
        check_extends(_cp(5), forked, [])
    assert isinstance(same_size.value.__cause__, ProofError)
    with pytest.raises(InconsistentCheckpointError, match="root1") as grown:
        check_extends(forked, _cp(13), TREE.consistency_proof(5, 13))
    assert isinstance(grown.value.__cause__, ProofError)
    with pytest.raises(InconsistentCheckpointError, match="proof hashes"):
        check_extends(_cp(5), _cp(13), TREE.consistency_proof(5, 13)[:-1])
