"""The node's read-only web dashboard (docs/reports.md): node.web.http_server serves the WSGI
application node.web.app, whose pages node.web.pages renders from node.services.reports
with the templates and catalogues beside it (node.web.i18n)."""

from __future__ import annotations

from node.web.http_server import DashboardServer, start_dashboard

__all__ = ["DashboardServer", "start_dashboard"]
