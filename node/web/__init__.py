"""The node's read-only web dashboard (docs/reports.md): node.web.server serves the pages
node.web.pages renders from node.services.reports."""

from __future__ import annotations

from node.web.server import DashboardServer, start_dashboard

__all__ = ["DashboardServer", "start_dashboard"]
