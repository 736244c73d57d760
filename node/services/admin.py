"""Who administers a node and who operates it: local operator credentials and handovers.

Local authentication (docs/operator-guide.md, "Who may operate a node"):
- An operator credential is a random 256-bit secret written as one line,
  `lapor-operator1.<base64url>`, to a file readable only by its owner (0600). The node
  keeps only its SHA-256, so a copy of the database does not reveal it.
- Every CLI command that changes the node (intake, disposition, erasure, links, keys,
  handover) presents the credential: `--credential FILE`, else $LAPOR_NODE_CREDENTIAL,
  else `operator.credential` beside node.yaml. It must be the one active credential.
- `init` issues the first credential to whoever creates the node, recorded as
  INIT_OPERATOR of the unit `init --unit` names (else of the node's name); with --unit an
  AdministrationHandedOver entry from nobody records that unit in the ledger at once.
  `admin handover` issues
  the next one, revokes the previous one at once, and records in the ledger which unit
  administers the node and who operates it (AdministrationHandedOver), so the history
  survives a change of team (Inspectorate -> Diskominfo). The credential the handover
  was asked with is checked again in the handover's transaction, the active row locked:
  of two handovers by holders of one credential, only the first takes effect.
- Each use case is `<name>_in(session, ...)` in the caller's transaction, with a wrapper
  that opens one and, after it committed, moves the new credential's file into place
  (staged beside it, 0600, before the commit: a failure leaves the old file).
The database and key files stay protected by file permissions on the data directory;
the credential is what makes a handover take effect for people who keep a copy of it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import ledger_pb2, trust_pb2
from node.crypto.keyfiles import write_private
from node.errors import ConfigError, PermissionDeniedError, ValidationError
from node.services._ledger import record
from node.services.context import NodeContext
from node.store import operators
from node.store.models import OperatorRow

__all__ = [
    "CREDENTIAL_ENV",
    "CREDENTIAL_FILE",
    "CREDENTIAL_PREFIX",
    "INIT_OPERATOR",
    "Handover",
    "OperatorView",
    "authenticate",
    "authenticate_in",
    "credential_path",
    "current",
    "handover",
    "handover_in",
    "issue_initial",
    "issue_initial_in",
    "new_credential",
    "unit_name",
]

CREDENTIAL_PREFIX = "lapor-operator1."
CREDENTIAL_FILE = "operator.credential"
CREDENTIAL_ENV = "LAPOR_NODE_CREDENTIAL"
_MAX_NAME = 200
INIT_OPERATOR = "the operator who ran init"


@dataclass(frozen=True)
class OperatorView:
    unit: str
    operator: str
    issued_at: str
    ledger_index: int | None


@dataclass(frozen=True)
class Handover:
    unit: str
    operator: str
    previous_unit: str
    previous_operator: str
    ledger_index: int
    credential_file: Path


def credential_path(ctx: NodeContext, given: Path | None = None) -> Path:
    """Where the operator's credential is read from (see the module docstring)."""
    if given is not None:
        return given
    env = os.environ.get(CREDENTIAL_ENV)
    if env:
        return Path(env)
    return ctx.config.base_dir / CREDENTIAL_FILE


def new_credential() -> str:
    """A fresh operator credential (256 random bits), for issue_initial_in and
    handover_in; the caller writes it where the operator will find it."""
    return CREDENTIAL_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip(
        "="
    )


def _digest(credential: str) -> bytes:
    return hashlib.sha256(credential.strip().encode()).digest()


def _active(session: Session) -> OperatorRow | None:
    return operators.active_operator(session)


def _view(row: OperatorRow) -> OperatorView:
    return OperatorView(row.unit, row.operator, row.issued_at.isoformat(), row.ledger_index)


def _name(what: str, value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValidationError(f"{what} must not be empty")
    if len(value) > _MAX_NAME:
        raise ValidationError(f"{what} is longer than {_MAX_NAME} characters")
    return value


def unit_name(value: str) -> str:
    """An operator-given unit name, checked (not empty, at most 200 characters) and with its
    whitespace collapsed."""
    return _name("--unit", value)


def _stage_credential(path: Path, credential: str, *, replace: bool) -> Path:
    """Write the credential beside `path` (0600); the caller moves it in after commit."""
    if path.exists() and not replace:
        raise ConfigError(f"{path} already exists; choose another --credential-out")
    staged = path.with_name(path.name + ".new")
    staged.unlink(missing_ok=True)
    write_private(staged, (credential + "\n").encode())
    return staged


def issue_initial(ctx: NodeContext, unit: str, *, in_ledger: bool = False) -> Path | None:
    """`issue_initial_in` in a transaction of its own, the credential written to the
    standard file beside node.yaml (0600) once the transaction committed. None if a
    credential exists already (init run again)."""
    unit = _name("--unit" if in_ledger else "unit", unit)
    path = ctx.config.base_dir / CREDENTIAL_FILE
    credential = new_credential()
    with ctx.db.write() as session:
        if issue_initial_in(session, ctx, unit, credential, in_ledger=in_ledger) is None:
            return None
        staged = _stage_credential(path, credential, replace=True)
    staged.replace(path)
    return path


def issue_initial_in(
    session: Session, ctx: NodeContext, unit: str, credential: str, *, in_ledger: bool = False
) -> OperatorView | None:
    """At `init`: `credential` becomes the first one, of whoever creates the node, as
    INIT_OPERATOR of `unit`, in the caller's transaction. Without `in_ledger` nothing is
    recorded in the ledger (the first handover names `unit` as the previous one); with it
    (init --unit), an AdministrationHandedOver entry from nobody to `unit` records from the
    start who runs the node. None if a credential exists already (init run again); naming
    another unit then is an error. The caller keeps `credential` (the node stores only its
    SHA-256)."""
    unit = _name("--unit" if in_ledger else "unit", unit)
    active = operators.active_operator(session, lock=True)
    if active is not None:
        if in_ledger and active.unit != unit:
            raise ConfigError(
                f"this node is already administered by {active.operator} ({active.unit}); "
                "init does not change that: use `lapor-node admin handover --unit ...`"
            )
        return None
    now = ctx.clock.now()
    index: int | None = None
    if in_ledger:
        index = _record_handover(session, ctx, unit, INIT_OPERATOR, credential, None, now)
    row = OperatorRow(
        unit=unit,
        operator=INIT_OPERATOR,
        credential_sha256=_digest(credential),
        issued_at=now,
        ledger_index=index,
    )
    session.add(row)
    session.flush()
    return _view(row)


def _record_handover(
    session: Session,
    ctx: NodeContext,
    unit: str,
    operator: str,
    credential: str,
    previous: OperatorRow | None,
    now: dt.datetime,
) -> int:
    """Append the AdministrationHandedOver entry (from `previous`, or from nobody)."""
    entry = ledger_pb2.LedgerEntry(
        administration_handed_over=ledger_pb2.AdministrationHandedOver(
            handover=trust_pb2.AdministrationHandover(
                node_id=ctx.node_id,
                unit=unit,
                operator=operator,
                credential_sha256=_digest(credential),
                previous_unit="" if previous is None else previous.unit,
                previous_operator="" if previous is None else previous.operator,
            )
        )
    )
    entry.administration_handed_over.handover.handed_over_at.FromDatetime(now)
    return record(session, ctx, entry)


def _read_credential(where: Path) -> str:
    try:
        return where.read_text().strip()
    except OSError as e:
        raise PermissionDeniedError(
            f"cannot read the operator credential {where} ({e.strerror}); pass --credential "
            f"FILE or set {CREDENTIAL_ENV}"
        ) from e


def authenticate(ctx: NodeContext, path: Path | None = None) -> OperatorView:
    """The active operator whose credential is in `path` (see credential_path), or
    PermissionDeniedError saying what is wrong and what to do."""
    where = credential_path(ctx, path)
    credential = _read_credential(where)
    with ctx.db.read() as session:
        return authenticate_in(session, credential, where)


def authenticate_in(session: Session, credential: str, where: Path) -> OperatorView:
    """`authenticate` in the caller's transaction, for `credential` read from `where`
    (named in the refusal). A writer that acts on the answer calls this in the transaction
    that acts, so a handover committed in between cannot be missed."""
    digest = _digest(credential)
    row = operators.operator_by_digest(session, digest)
    if row is None or not hmac.compare_digest(row.credential_sha256, digest):
        raise PermissionDeniedError(
            f"{where} is not an operator credential of this node; ask its operator"
        )
    if row.revoked_at is not None:
        now = _active(session)
        successor = "" if now is None else f" to {now.operator} ({now.unit})"
        raise PermissionDeniedError(
            f"the operator credential in {where} was revoked on "
            f"{row.revoked_at:%Y-%m-%d %H:%M} UTC when administration was handed over"
            f"{successor}; ask the current operator"
        )
    return _view(row)


def current(ctx: NodeContext) -> OperatorView | None:
    with ctx.db.read() as session:
        row = _active(session)
        return None if row is None else _view(row)


def handover(
    ctx: NodeContext,
    unit: str,
    operator: str,
    credential_out: Path | None = None,
    *,
    presented: Path | None = None,
) -> Handover:
    """`handover_in` in a transaction of its own: the new credential is written 0600 to
    `credential_out` (default the standard file, which it replaces) once the transaction
    committed. `presented` is the file of the credential the caller authenticated with
    (the CLI's --credential): it is checked again inside the transaction, so of two
    handovers by the holder of one credential only the first takes effect."""
    unit, operator = _name("--unit", unit), _name("--operator", operator)
    path = credential_out or ctx.config.base_dir / CREDENTIAL_FILE
    presenting = None if presented is None else (_read_credential(presented), presented)
    credential = new_credential()
    with ctx.db.write() as session:
        new, previous = handover_in(session, ctx, unit, operator, credential, presented=presenting)
        # Staged last: a failure before commit leaves the old credential file in place.
        staged = _stage_credential(path, credential, replace=credential_out is None)
    staged.replace(path)
    assert new.ledger_index is not None
    return Handover(
        unit,
        operator,
        "" if previous is None else previous.unit,
        "" if previous is None else previous.operator,
        new.ledger_index,
        path,
    )


def handover_in(
    session: Session,
    ctx: NodeContext,
    unit: str,
    operator: str,
    credential: str,
    *,
    presented: tuple[str, Path] | None = None,
) -> tuple[OperatorView, OperatorView | None]:
    """Hand administration to `unit` and `operator` in the caller's transaction:
    `credential` (which the caller keeps; the node stores its SHA-256) becomes the active
    one, the previous one is revoked, and an AdministrationHandedOver entry is appended.
    `presented`, the credential the caller authenticated with and its file, must still
    be the active one: it is checked here with the active row locked, not only before the
    transaction. Returns the new operator and the previous one (None: there was none)."""
    unit, operator = _name("--unit", unit), _name("--operator", operator)
    previous = operators.active_operator(session, lock=True)
    if presented is not None:
        # Only the active credential is unrevoked: passing this is being `previous`.
        authenticate_in(session, *presented)
    now = ctx.clock.now()
    index = _record_handover(session, ctx, unit, operator, credential, previous, now)
    if previous is not None:
        previous.revoked_at = now
    row = OperatorRow(
        unit=unit,
        operator=operator,
        credential_sha256=_digest(credential),
        issued_at=now,
        ledger_index=index,
    )
    session.add(row)
    session.flush()
    return _view(row), None if previous is None else _view(previous)
