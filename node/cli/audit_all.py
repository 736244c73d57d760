"""`lapor-node audit` with every subcommand: each module imported here registers its own on
the group (node.cli.audit_group), so importing them is the point."""

from __future__ import annotations

from node.cli import commands_audit, commands_state, commands_tlog
from node.cli.audit_group import audit

__all__ = ["audit", "commands_audit", "commands_state", "commands_tlog"]
