"""What every command shares: finding the node, printing data, and turning NodeError into
a message that tells the operator what to do."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from node.config import default_config_path
from node.errors import NodeError
from node.services.context import NodeContext

__all__ = ["config_option", "console", "emit_json", "handle_errors", "json_option", "open_node"]

console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])


def config_option(fn: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path),
        default=None,
        help="node.yaml of the node to act on (default ./node.yaml or $LAPOR_NODE_CONFIG).",
    )(fn)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


def handle_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NodeError as e:
            err_console.print(f"[bold red]error:[/] {e}", markup=True, soft_wrap=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@contextmanager
def open_node(config_path: Path | None, *, upgrade: bool = False) -> Iterator[NodeContext]:
    ctx = NodeContext.open(config_path or default_config_path(), upgrade=upgrade)
    try:
        yield ctx
    finally:
        ctx.close()


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def emit_json(value: Any) -> None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    elif isinstance(value, list):
        value = [
            dataclasses.asdict(v) if dataclasses.is_dataclass(v) and not isinstance(v, type) else v
            for v in value
        ]
    click.echo(json.dumps(value, default=_default, indent=2, ensure_ascii=False))


def when(value: dt.datetime | None) -> str:
    return "-" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
