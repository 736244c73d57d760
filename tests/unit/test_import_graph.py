"""The shape of node/'s imports (docs/architecture.md, "Layers"), read from the source with
`ast`: no import circle among modules; no import inside a function unless its line says
why (`# lazy: ...`); federation/, cli/ and web/ reach storage only through services/; the
pure cores (ledger/, crypto/, workflow/) import none of the layers above them."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

NODE = Path(__file__).resolve().parents[2] / "node"
LAZY_MARK = "# lazy:"

# Layers that must not import node.store (they go through node.services).
ABOVE_SERVICES = ("node.federation", "node.cli", "node.web")
# Pure cores, and what they must not import.
PURE = ("node.ledger", "node.crypto", "node.workflow")
OUTER = ("node.services", "node.store", "node.federation", "node.cli", "node.web")

# Violations in modules other branches own (cli/, federation/): to be removed at merge,
# by a `# lazy: <why>` on the line where the import is lazy on purpose, or by moving it up.
KNOWN_CYCLES: frozenset[tuple[str, ...]] = frozenset()  # none left
KNOWN_LAZY: frozenset[tuple[str, str]] = frozenset()  # none left
KNOWN_LAYER: frozenset[tuple[str, str]] = frozenset()  # none left


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the node module imported, or the outside name
    internal: bool  # a module of node/
    line: int
    in_function: bool
    text: str  # the source line


def _module_name(path: Path) -> str:
    parts = path.relative_to(NODE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(NODE.rglob("*.py")) if "_proto" not in p.parts}


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The node module `name` is, or lies in (an attribute of a module); None if outside."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _walk(node: ast.AST, in_function: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
        yield child, inside
        yield from _walk(child, inside)


def _imports(module: str, path: Path, known: dict[str, Path]) -> Iterator[Import]:
    source = path.read_text()
    lines = source.splitlines()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for stmt, in_function in _walk(ast.parse(source, str(path))):
        names: list[str] = []
        if isinstance(stmt, ast.Import):
            names = [alias.name for alias in stmt.names]
        elif isinstance(stmt, ast.ImportFrom):
            base = stmt.module or ""
            if stmt.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (stmt.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` imports the module pkg.mod; `from mod import name`, mod.
            names = [f"{base}.{alias.name}" for alias in stmt.names]
        else:
            continue
        text = " ".join(lines[stmt.lineno - 1 : stmt.end_lineno or stmt.lineno])
        for name in names:
            target = _resolve(name, known)
            if target is None:
                yield Import(module, name, False, stmt.lineno, in_function, text)
            elif target != module:
                yield Import(module, target, True, stmt.lineno, in_function, text)


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    known = _modules()
    return [i for module, path in known.items() for i in _imports(module, path, known)]


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan), each as a
    cycle through its members, sorted for a stable message."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(_cycle_in(sorted(component), edges))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _cycle_in(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """One cycle through the component's first module, by breadth-first search."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges.get(v, set()) & members):
            if w == start:
                return [*paths[v], start]
            if w not in paths:
                paths[w] = [*paths[v], w]
                queue.append(w)
    return component  # pragma: no cover - a strongly connected component has a cycle


def test_there_is_no_import_circle(imports: list[Import]) -> None:
    """Module-level imports (those under `if TYPE_CHECKING:` too) form no cycle."""
    edges: dict[str, set[str]] = {}
    for i in imports:
        if i.internal and not i.in_function:
            edges.setdefault(i.module, set()).add(i.target)
    cycles = {tuple(c) for c in _cycles(edges)}
    named = "; ".join(" -> ".join(c) for c in sorted(cycles - KNOWN_CYCLES))
    assert cycles - KNOWN_CYCLES == set(), f"import circles: {named}"
    assert KNOWN_CYCLES - cycles == set(), "fixed: remove them from KNOWN_CYCLES"


def test_every_import_inside_a_function_says_why(imports: list[Import]) -> None:
    """An import inside a function carries `# lazy: <why>` on its line."""
    unexplained = {
        (i.module, i.target) for i in imports if i.in_function and LAZY_MARK not in i.text
    }
    assert unexplained - KNOWN_LAZY == set(), "function-level imports without `# lazy:`"
    assert KNOWN_LAZY - unexplained == set(), "fixed: remove them from KNOWN_LAZY"


def test_the_layers_import_only_downwards(imports: list[Import]) -> None:
    """federation/, cli/ and web/ never import store/; the pure cores import none of
    services/, store/, federation/, cli/, web/."""

    def within(name: str, packages: tuple[str, ...]) -> bool:
        return any(name == p or name.startswith(p + ".") for p in packages)

    crossing = {
        (i.module, i.target)
        for i in imports
        if (within(i.module, ABOVE_SERVICES) and within(i.target, ("node.store",)))
        or (within(i.module, PURE) and within(i.target, OUTER))
    }
    assert crossing - KNOWN_LAYER == set(), "imports against the layers"
    assert KNOWN_LAYER - crossing == set(), "fixed: remove them from KNOWN_LAYER"


def test_the_checker_sees_a_circle_and_names_it() -> None:
    """The cycle finder itself: a -> b -> c -> a is found and named; a tree is not."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b", "c"}, "b": {"c"}}) == []
