"""NodeContext: what every use case needs (config, database, signing key, clock)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from node.clock import Clock, SystemClock
from node.config import NodeConfig, load_config
from node.crypto.signing import SigningKey
from node.ids import NodeId
from node.services._keys import open_key
from node.store.db import Database

__all__ = ["NodeContext"]


@dataclass
class NodeContext:
    config: NodeConfig
    db: Database
    signing_key: SigningKey
    clock: Clock = field(default_factory=SystemClock)

    @property
    def node_id(self) -> NodeId:
        return self.config.node_id

    @classmethod
    def open(
        cls, config_path: Path, *, clock: Clock | None = None, upgrade: bool = False
    ) -> NodeContext:
        """Load node.yaml, the signing key and the database (optionally upgrading it)."""
        config = load_config(config_path)
        db = Database(config.database_url)
        if upgrade and config.signing_key.exists():
            # A node that has keys has run: never create its database afresh.
            db.check_file_exists()
        if upgrade:
            db.upgrade()
        else:
            db.check_reachable()
        return cls(config, db, open_key(config, db), clock or SystemClock())

    def close(self) -> None:
        self.db.dispose()
