"""What every command shares: finding the node, printing data, and turning NodeError into
a message that tells the operator what to do."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import OperationalError

from node.config import default_config_path
from node.errors import NodeError
from node.services.context import NodeContext

__all__ = [
    "config_option",
    "console",
    "credential_option",
    "database_problem",
    "emit_json",
    "exit_for",
    "group_options",
    "handle_errors",
    "json_option",
    "open_node",
    "operator_node",
    "plain",
    "progress_bar",
]

console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])


# C0 controls but tab and newline, DEL, C1 controls (CSI and friends), and the bidirectional
# overrides and isolates that make a terminal show text in another order than it is stored.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def plain(value: object, *, markup: bool = True) -> str:
    """Text from outside (a complaint's title or description, a name, an id, an error
    message quoting input) made safe to print: control characters are dropped, so no
    escape sequence reaches the terminal, and rich markup is escaped, so `[dinaikkan]`
    prints as written and `[/]` or `[link=...]` are never interpreted by `console`.
    `markup=False` for text printed without rich (click.echo, CSV): only the dropping."""
    text = _UNPRINTABLE.sub("", str(value))
    return escape(text) if markup else text


def group_options(click_ctx: click.Context, accepted: frozenset[str]) -> dict[str, Any]:
    """The options given on the parent group (`lapor-node report --config X backlog`) that
    the subcommand running in `click_ctx` must use, by parameter name.

    An option of the group the subcommand does not take, or one given on both with
    different values, is refused: an option is never silently dropped."""
    parent = click_ctx.parent
    if parent is None:
        return {}
    inherited: dict[str, Any] = {}
    for param in parent.command.params:
        name = param.name
        if name is None or parent.get_parameter_source(name) in (None, ParameterSource.DEFAULT):
            continue
        flag = param.opts[0] if param.opts else name
        value = parent.params[name]
        if name not in accepted:
            raise click.UsageError(
                f"{flag} belongs to `{parent.command_path}` itself and does not apply to "
                f"`{click_ctx.command_path}`; leave it out",
                ctx=click_ctx,
            )
        own = click_ctx.get_parameter_source(name)
        if own not in (None, ParameterSource.DEFAULT) and click_ctx.params[name] != value:
            raise click.UsageError(
                f"{flag} is given twice with different values ({value!r} before "
                f"{click_ctx.info_name!r}, {click_ctx.params[name]!r} after it); give it once",
                ctx=click_ctx,
            )
        inherited[name] = value
    return inherited


def config_option(fn: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path),
        default=None,
        help="node.yaml of the node to act on (default ./node.yaml or $LAPOR_NODE_CONFIG).",
    )(fn)


def credential_option(fn: F) -> F:
    return click.option(
        "--credential",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The operator credential file (default $LAPOR_NODE_CREDENTIAL, else "
        "operator.credential beside node.yaml).",
    )(fn)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


# What a database the command could not use means for the operator, by the driver's error
# class (SQLite's error name, PostgreSQL's SQLSTATE or, on a connection that never opened
# and so has none, libpq's words): never the SQL or its parameters.
_LOCKED = (
    "the database is locked: another process (a running `lapor-node serve`, a backup, or "
    "another command) held its write lock longer than the busy timeout; run the command "
    "again when that one has finished, or stop serve first for long maintenance"
)
_SQLITE = {
    "SQLITE_BUSY": _LOCKED,
    "SQLITE_LOCKED": _LOCKED,
    "SQLITE_CANTOPEN": "the database file cannot be opened: check database.url in node.yaml, "
    "and that its directory exists and the user running lapor-node may write it",
    "SQLITE_READONLY": "the database is read-only for this user: give the user running "
    "lapor-node write access to the database file and its directory",
    "SQLITE_FULL": "the disk holding the database is full: free space, then run the command again",
}
_REFUSED = (
    "nothing accepts connections at the PostgreSQL host and port in database.url "
    "(connection refused): start PostgreSQL, or correct the address in node.yaml"
)
_LOGIN = (
    "PostgreSQL refused the login (no such role, or the password is wrong): check the user "
    "and password in database.url, and the server's pg_hba.conf"
)
_NO_DATABASE = (
    "the PostgreSQL database named in database.url does not exist: create it "
    "(`createdb NAME`), or correct the name in node.yaml"
)
_SQLSTATES = {
    "28000": _LOGIN,
    "28P01": _LOGIN,
    "3D000": _NO_DATABASE,
    "57P03": "PostgreSQL is starting up or shutting down: run the command again in a moment",
    "53300": "PostgreSQL has no connection slot free (too many connections): run the command "
    "again later, or raise max_connections",
}
_LIBPQ = (
    ("Connection refused", _REFUSED),
    ("password authentication failed", _LOGIN),
    ('role "', _LOGIN),
    ('database "', _NO_DATABASE),
    ("the database system is starting up", _SQLSTATES["57P03"]),
    ("the database system is shutting down", _SQLSTATES["57P03"]),
    (
        "could not translate host name",
        "the PostgreSQL host in database.url has no address "
        "(unknown name): correct it in node.yaml",
    ),
    (
        "timeout expired",
        "PostgreSQL did not answer in time at the address in database.url: "
        "check that the host is up and no firewall drops the port",
    ),
)


def database_problem(error: OperationalError) -> str:
    """What `error` (a database the command could not use) means, in words for the
    operator, from its class alone (see above)."""
    orig = error.orig
    sqlite_name = getattr(orig, "sqlite_errorname", None)
    if isinstance(sqlite_name, str):
        return _SQLITE.get(
            sqlite_name,
            f"SQLite failed ({sqlite_name}); run the command again, and if it persists, "
            "check the database file with `lapor-node backup verify` on a recent backup",
        )
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate in _SQLSTATES:
        return _SQLSTATES[sqlstate]
    if sqlstate is None:  # the connection never opened: libpq's own words say why
        said = str(orig)
        for words, meaning in _LIBPQ:
            if words in said:
                return meaning
        return (
            "cannot connect to PostgreSQL at the address in database.url: check that it "
            "runs and that the host, port, user and database name in node.yaml are right"
        )
    return (
        f"PostgreSQL failed (SQLSTATE {sqlstate}); run the command again, and if it "
        "persists, check the server's log"
    )


def _fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {plain(message)}", markup=True, soft_wrap=True)
    sys.exit(1)


_OPENING = "cannot open the database at "


def exit_for(error: BaseException) -> None:
    """If `error` is a NodeError or a database the command could not use, end the command
    with one line telling the operator what to do (exit status 1); else return."""
    if isinstance(error, NodeError):
        text = str(error)
        cause = error.__cause__
        if isinstance(cause, OperationalError) and text.startswith(_OPENING):
            # node.store.db's words for the database it could not open: where, then why
            where = text[len(_OPENING) :].split(": ", 1)[0]
            text = f"{_OPENING}{where}: {database_problem(cause)}"
        _fail(text)
    if isinstance(error, OperationalError):
        _fail(database_problem(error))


def handle_errors(fn: F) -> F:
    """Run a command; a NodeError, or a database it could not use, ends it with one line
    telling the operator what to do (exit_for), never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (NodeError, OperationalError) as e:
            exit_for(e)
            raise  # pragma: no cover - exit_for exits

    return wrapper  # type: ignore[return-value]


@contextmanager
def open_node(config_path: Path | None, *, upgrade: bool = False) -> Iterator[NodeContext]:
    ctx = NodeContext.open(config_path or default_config_path(), upgrade=upgrade)
    try:
        yield ctx
    finally:
        ctx.close()


@contextmanager
def operator_node(
    config_path: Path | None, credential: Path | None, *, upgrade: bool = False
) -> Iterator[NodeContext]:
    """open_node for commands that change the node: the operator's credential must be the
    active one (node.services.admin)."""
    from node.services import admin  # lazy: commands that only read never load it

    with open_node(config_path, upgrade=upgrade) as ctx:
        admin.authenticate(ctx, credential)
        yield ctx


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Path):
        return str(value)
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


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int | None], None]]:
    """A rich progress bar on a terminal's stderr; a no-op elsewhere."""
    if not enabled or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update
