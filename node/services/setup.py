"""Creating a node: data directory, keys, certificate, node.yaml, database at head."""

from __future__ import annotations

from pathlib import Path

from node.clock import Clock, SystemClock
from node.config import DEFAULT_CONFIG, load_config, render_config
from node.crypto.keyfiles import write_private, write_public
from node.crypto.sealing import SealingKey
from node.crypto.signing import SigningKey
from node.crypto.tls import generate_tls_identity
from node.errors import ConfigError
from node.ids import parse_node_id
from node.services import admin, datadir
from node.services.context import NodeContext
from node.store.db import Database

__all__ = ["init_node"]


def init_node(
    directory: Path | None,
    node_id: str | None,
    name: str | None,
    *,
    config_path: Path | None = None,
    listen: str = "127.0.0.1:7400",
    database_url: str = "sqlite:///node.db",
    timezone: str = "Asia/Jakarta",
    unit: str | None = None,
    clock: Clock | None = None,
) -> Path:
    """Create a node and return the path of its node.yaml.

    With `directory`, `node_id` and `name`: write DIR/node.yaml first. With only
    `config_path`: use that existing node.yaml and create whatever it names that is missing.
    Keys are never overwritten; the database is upgraded to head either way. `unit` (init
    --unit) names the unit that runs the node from the start, in the ledger too
    (node.services.admin.issue_initial). The folder is made 0700 and every file written
    here 0600 (node.services.datadir).
    """
    with datadir.private_files():
        return _init_node(
            directory, node_id, name, config_path, listen, database_url, timezone, unit, clock
        )


def _init_node(
    directory: Path | None,
    node_id: str | None,
    name: str | None,
    config_path: Path | None,
    listen: str,
    database_url: str,
    timezone: str,
    unit: str | None,
    clock: Clock | None,
) -> Path:
    clock = clock or SystemClock()
    if unit is not None:
        unit = admin.unit_name(unit)  # checked before anything is written
    if directory is not None:
        if not node_id or not name:
            raise ConfigError("init with --dir needs --id and --name")
        parse_node_id(node_id)
        # Rendered first: a bad --listen or --timezone is refused before anything exists.
        text = render_config(
            node_id, name, listen=listen, database_url=database_url, timezone=timezone
        )
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        config_path = directory / DEFAULT_CONFIG
        if config_path.exists():
            raise ConfigError(f"{config_path} already exists: this directory holds a node")
        config_path.write_text(text)
    if config_path is None:
        raise ConfigError("init needs --dir DIR --id ID --name NAME, or an existing --config")
    config = load_config(config_path)
    if not config.signing_key.exists():
        write_private(config.signing_key, SigningKey.generate().to_pem())
    if config.sealing_key is not None and not config.sealing_key.exists():
        write_private(config.sealing_key, SealingKey.generate().to_pem())
    if not config.tls_key.exists() or not config.tls_cert.exists():
        if config.tls_key.exists() != config.tls_cert.exists():
            raise ConfigError(
                f"only one of {config.tls_key} and {config.tls_cert} exists; "
                "restore the other or remove both"
            )
        tls = generate_tls_identity(config.node_id, clock.now())
        write_private(config.tls_key, tls.key_pem)
        write_public(config.tls_cert, tls.cert_pem)
    db = Database(config.database_url)
    try:
        db.upgrade()
    finally:
        db.dispose()
    ctx = NodeContext.open(config.path, clock=clock)
    try:
        if unit is None:
            admin.issue_initial(ctx, config.name)
        else:
            admin.issue_initial(ctx, unit, in_ledger=True)
    finally:
        ctx.close()
    return config.path
