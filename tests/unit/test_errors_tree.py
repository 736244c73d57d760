"""node.errors: every exception class defined under node/ is a NodeError drawn in the tree
of errors.py's docstring, under its own parent."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import node
from node import errors

# "    │   ├── SignatureError   ..." -> (depth, name)
_LINE = re.compile(r"^(?P<indent>[ │]*)(?:├── |└── )?(?P<name>[A-Z]\w+)\s")


def _drawn() -> dict[str, str | None]:
    """Each class drawn in the tree, with the class drawn as its parent."""
    parents: dict[str, str | None] = {}
    stack: list[str] = []
    for line in (errors.__doc__ or "").splitlines():
        body = line[4:]
        match = _LINE.match(body)
        if match is None or not ("── " in body or body.startswith("NodeError")):
            continue
        depth = len(match["indent"]) // 4 + (1 if "── " in body else 0)
        del stack[depth:]
        parents[match["name"]] = stack[-1] if stack else None
        stack.append(match["name"])
    return parents


def _exception_classes() -> list[type[BaseException]]:
    found = []
    for info in pkgutil.walk_packages(node.__path__, "node."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found.append(value)
    return found


def test_the_drawing_is_read() -> None:
    """The tree parses: NodeError at the root, known branches under their parents."""
    drawn = _drawn()
    assert drawn["NodeError"] is None
    assert drawn["SignatureError"] == "IntegrityError"
    assert drawn["ChainError"] == "TrustError"


def test_every_exception_class_is_in_the_tree() -> None:
    """Every exception class of every node module is a NodeError, drawn under its parent."""
    drawn = _drawn()
    classes = _exception_classes()
    assert len(classes) > 20
    for cls in classes:
        assert issubclass(cls, errors.NodeError), f"{cls.__module__}.{cls.__name__}"
        assert cls.__name__ in drawn, f"{cls.__module__}.{cls.__name__} is not in the tree"
        if cls is not errors.NodeError:
            assert drawn[cls.__name__] == cls.__mro__[1].__name__, cls
