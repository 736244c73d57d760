"""node.yaml: its schema, loading, validation and defaults.

- node.config.schema: the pydantic models, the single description of every key, its
  type, default and meaning.
- node.config.loader: load_config (YAML without duplicate keys, one line per problem).
- node.config.template: render_config for `init`, render_example for the repository's
  node.yaml (written by scripts/gen_node_yaml.py).
- node.config.model: the frozen values the rest of the code receives (NodeConfig, ...).

Every name below is importable from node.config as before. Only DEFAULT_CONFIG and
default_config_path load with the package: the rest load on first use, so a command that
never reads node.yaml (`lapor-node --version`) does not pay for pydantic.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.config.loader import load_config
    from node.config.model import (
        GATEWAY_CHANNELS,
        AuditorConfig,
        DashboardConfig,
        ExpectedChild,
        FederationConfig,
        GatewayConfig,
        IntakeConfig,
        LedgerConfig,
        MetricsConfig,
        NodeConfig,
        RoutingConfig,
        ServerConfig,
        ThrottleConfig,
        WorkflowConfig,
        is_loopback,
        port_after,
    )
    from node.config.template import render_config, render_example

__all__ = [
    "DEFAULT_CONFIG",
    "GATEWAY_CHANNELS",
    "AuditorConfig",
    "DashboardConfig",
    "ExpectedChild",
    "FederationConfig",
    "GatewayConfig",
    "IntakeConfig",
    "LedgerConfig",
    "MetricsConfig",
    "NodeConfig",
    "RoutingConfig",
    "ServerConfig",
    "ThrottleConfig",
    "WorkflowConfig",
    "default_config_path",
    "is_loopback",
    "load_config",
    "port_after",
    "render_config",
    "render_example",
]

DEFAULT_CONFIG = "node.yaml"

_LAZY = {
    "load_config": "node.config.loader",
    "render_config": "node.config.template",
    "render_example": "node.config.template",
}


def default_config_path() -> Path:
    return Path(os.environ.get("LAPOR_NODE_CONFIG", DEFAULT_CONFIG))


def __getattr__(name: str) -> Any:
    """Load the module that defines `name` on first use (PEP 562)."""
    if name not in __all__:
        raise AttributeError(f"module 'node.config' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY.get(name, "node.config.model")), name)
    globals()[name] = value
    return value
