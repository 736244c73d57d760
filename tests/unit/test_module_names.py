"""A base name names one concept (decision 0037): two modules under node/ share a base name
only when they are that concept's slices of different layers, and each such name is listed
here with why. A new clash fails until it is renamed or argued in SHARED."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import node

ROOT = Path(node.__file__).resolve().parent
GENERATED = ROOT / "_proto"

SHARED: dict[str, tuple[str, frozenset[str]]] = {
    "__init__.py": ("every package has one; not a module of its own", frozenset()),
    "audit.py": (
        "the audit of a node's ledger: ledger/audit.py verifies an export offline (pure), "
        "services/audit.py makes the export and proofs from this node's database with it",
        frozenset({"ledger/audit.py", "services/audit.py"}),
    ),
    "complaints.py": (
        "complaints: complaints.py holds the values (drafts, summaries, commitments; pure), "
        "services/complaints.py the use cases over them",
        frozenset({"complaints.py", "services/complaints.py"}),
    ),
    "lifecycle.py": (
        "the complaint lifecycle: workflow/lifecycle.py is its state machine (pure), "
        "services/lifecycle.py runs its transitions on this node and across the tree",
        frozenset({"workflow/lifecycle.py", "services/lifecycle.py"}),
    ),
    "reports.py": (
        "reports: workflow/reports.py computes the figures (pure), store/reports.py holds the "
        "queries, services/reports.py puts the two together",
        frozenset({"workflow/reports.py", "store/reports.py", "services/reports.py"}),
    ),
    "rotation.py": (
        "key rotation: crypto/rotation.py makes and opens the signed records (pure), "
        "services/rotation.py rotates this node's keys and follows a peer's",
        frozenset({"crypto/rotation.py", "services/rotation.py"}),
    ),
    "routing.py": (
        "routing rules: workflow/routing.py decides the child (pure), services/routing.py "
        "disposes complaints by that decision",
        frozenset({"workflow/routing.py", "services/routing.py"}),
    ),
    "trust.py": (
        "chains of trust: ledger/trust.py walks one for an auditor (pure), services/trust.py "
        "builds this node's own from its ledger",
        frozenset({"ledger/trust.py", "services/trust.py"}),
    ),
}


def _modules() -> dict[str, set[str]]:
    """Every module under node/ (generated code aside), by base name, as paths from node/."""
    by_name: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        if GENERATED in path.parents:
            continue
        by_name[path.name].add(path.relative_to(ROOT).as_posix())
    return by_name


def test_every_shared_base_name_is_one_concept_in_different_layers() -> None:
    """Each base name two modules share is in SHARED, with exactly the modules listed."""
    shared = {name: paths for name, paths in _modules().items() if len(paths) > 1}
    unexplained = sorted(set(shared) - set(SHARED))
    assert unexplained == [], (
        f"modules share a base name without a reason: "
        f"{ {n: sorted(shared[n]) for n in unexplained} }; rename one (decision 0037) or add "
        "it to SHARED saying why they are one concept's slices of different layers"
    )
    for name, (why, paths) in SHARED.items():
        assert why, f"{name}: say why the modules share it"
        if paths:
            assert shared.get(name, set()) == paths, f"{name}: SHARED lists {sorted(paths)}"
    stale = sorted(n for n, (_, paths) in SHARED.items() if paths and n not in shared)
    assert stale == [], f"no longer shared, remove from SHARED: {stale}"


def test_shared_names_are_one_outer_module_over_inner_ones() -> None:
    """The modules of a shared name live in different packages: one in services/ (the use
    case), the others in the pure cores or store/ (what it is built on), never two in the
    outer layers, where one name could hide two jobs."""
    inner = {"", "crypto", "ledger", "workflow", "store"}
    for name, (_, paths) in SHARED.items():
        if not paths:
            continue
        folders = sorted(Path(p).parent.as_posix().replace(".", "") for p in paths)
        assert len(set(folders)) == len(folders), f"{name}: two in one package"
        outer = [f for f in folders if f not in inner]
        assert outer == ["services"], f"{name}: {sorted(paths)} is not services/ over cores"
