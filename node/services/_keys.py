"""This node's key files and which key is current: the low layer of key rotation
(node.services.rotation), used wherever this node signs.

The database is the truth about which generation of keys is current (`own_keys`, the row
not retired); the configured key files must hold it. A rotation writes the new keys as
`<file>.next`, commits, then promotes them (`settle_files`); if it stops in between,
`settle_files` finishes the job when the keys are next read.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from node.config import NodeConfig
from node.crypto.keyfiles import read_file
from node.crypto.signing import SigningKey
from node.errors import IntegrityError
from node.store import keys
from node.store.db import Database


class KeyHolder(Protocol):
    """What `refresh_key` reads and updates: a NodeContext (node.services.context), which
    imports this module, so it is named here by its shape."""

    config: NodeConfig
    signing_key: SigningKey


__all__ = [
    "KeyHolder",
    "current_key",
    "next_path",
    "open_key",
    "refresh_key",
    "retired_path",
    "settle_files",
]

_NEXT = ".next"


# --- files ------------------------------------------------------------------------------


def next_path(path: Path) -> Path:
    return path.with_name(path.name + _NEXT)


def retired_path(path: Path, signing_key: bytes) -> Path:
    return path.with_name(f"{path.name}.{hashlib.sha256(signing_key).hexdigest()[:16]}.retired")


def _file_key(path: Path) -> bytes | None:
    try:
        return SigningKey.from_pem(path.read_bytes()).public.raw
    except FileNotFoundError:
        return None


def _replace(src: Path, dst: Path) -> None:
    src.replace(dst)
    fd = os.open(dst.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def settle_files(config: NodeConfig, current: bytes) -> bool:
    """Make the key files agree with the database's current signing key `current`.

    Returns True if a committed rotation's `.next` files were promoted now. Removes the
    `.next` files of a rotation that never committed. Raises IntegrityError if neither the
    files nor the `.next` files hold the current key (keys restored from another backup
    than the database)."""
    paths = (config.signing_key, config.tls_key, config.tls_cert)
    if _file_key(config.signing_key) == current:
        for path in paths:
            next_path(path).unlink(missing_ok=True)
        return False
    if _file_key(next_path(config.signing_key)) != current or not all(
        next_path(p).exists() for p in paths
    ):
        raise IntegrityError(
            f"the signing key in {config.signing_key} is not the one this node's database "
            "says is current (its last `keys rotate`); the key files and the database come "
            "from different backups. Restore the key files that belong with this database"
        )
    old = _file_key(config.signing_key)
    config.signing_key.unlink(missing_ok=True)  # a retired signing key signs nothing more
    if old is not None:
        for path in (config.tls_key, config.tls_cert):
            if path.exists():
                _replace(path, retired_path(path, old))
    for path in paths:
        _replace(next_path(path), path)
    return True


def current_key(session: Session) -> bytes | None:
    """The current signing key (public) by the database; None before any rotation."""
    return keys.current_signing_key(session)


def refresh_key(session: Session, ctx: KeyHolder) -> None:
    """If another process rotated this node's keys, load the new key before signing.

    Call inside the signing transaction after the ledger head is locked: the rotation's own
    transaction locks it too, so this read sees it if it committed first."""
    current = current_key(session)
    if current is None or current == ctx.signing_key.public.raw:
        return
    settle_files(ctx.config, current)
    key = SigningKey.from_pem(read_file(ctx.config.signing_key, "signing key"))
    if key.public.raw != current:  # pragma: no cover - settle_files checked it
        raise IntegrityError(f"{ctx.config.signing_key} does not hold the current key")
    ctx.signing_key = key


def open_key(config: NodeConfig, db: Database) -> SigningKey:
    """The node's signing key at start, after finishing (or undoing) an interrupted
    rotation: the database's current key, or before any rotation the file's."""
    try:
        with db.read() as session:
            current = current_key(session)
    except (OperationalError, ProgrammingError):
        # A database not yet upgraded to key rotation (`serve` upgrades it): one key so far.
        current = None
    if current is None:
        current = _file_key(config.signing_key)
    if current is not None:
        settle_files(config, current)
    return SigningKey.from_pem(read_file(config.signing_key, "signing key"))
