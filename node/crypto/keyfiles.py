"""Reading and writing key files. Private keys are created with mode 0600 and never logged."""

from __future__ import annotations

import os
from pathlib import Path

from node.errors import ConfigError

__all__ = ["read_file", "write_private", "write_public"]


def write_private(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600; refuse to overwrite an existing key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise ConfigError(f"{path} already exists; refusing to overwrite a key") from e
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_bytes(data)


def read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as e:
        raise ConfigError(
            f"{what} not found at {path}: run `lapor-node init` for this node first"
        ) from e
