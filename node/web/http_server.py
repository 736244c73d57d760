"""The dashboard's HTTP server: node.web.app's WSGI application on werkzeug's threaded
server, in one thread of the node's process.

Invariants:

1. The server only carries requests to node.web.app (which holds the dashboard's rules:
   read-only, token, errors, headers).
2. Requests are logged at debug level by path only: a query may carry ``?token=``, so no
   query string, header or cookie is ever logged.
"""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

from node.errors import ConfigError
from node.federation.limits import limit_http_server
from node.logs import get_logger
from node.services.context import NodeContext
from node.web.app import COOKIE, PAGE_SIZE, DashboardApp

__all__ = ["COOKIE", "DashboardServer", "start_dashboard"]


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's handler, logging the path alone (invariant 2)."""

    server_version = "lapor-node-dashboard"
    sys_version = ""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path.split("?", 1)[0]
        get_logger().debug("dashboard.request", path=path, status=str(code))

    def log_error(self, format: str, *args: Any) -> None:
        get_logger().debug("dashboard.request_failed", path=self.path.split("?", 1)[0])

    def log_message(self, format: str, *args: Any) -> None:
        pass


class DashboardServer:
    """Serve the dashboard of ``ctx``'s node on ``dashboard.listen`` until stopped."""

    def __init__(self, ctx: NodeContext, *, page_size: int = PAGE_SIZE) -> None:
        self.ctx = ctx
        cfg = ctx.config.dashboard
        self.log = get_logger(node_id=ctx.node_id)
        self.app = DashboardApp(ctx, page_size=page_size)
        host, port = cfg.address
        try:
            self._httpd = make_server(
                host, port, self.app, threaded=True, request_handler=_QuietHandler
            )
        except (OSError, SystemExit) as e:
            # werkzeug exits (SystemExit) when the port is taken; either way say what to do.
            why = e.strerror if isinstance(e, OSError) else "address in use"
            raise ConfigError(
                f"cannot serve the dashboard on {cfg.listen} ({why}); change or remove "
                "dashboard.listen in node.yaml"
            ) from e
        limit_http_server(self._httpd)  # connection cap, idle timeout (issue 17.6)
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="dashboard", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        self.log.info("dashboard.started", listen=self.ctx.config.dashboard.listen, port=self.port)

    def stop(self) -> None:
        """Stop serving and close the socket (blocks until the serving loop ends)."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def start_dashboard(ctx: NodeContext) -> DashboardServer | None:
    """Start the dashboard if node.yaml turns it on (``dashboard.listen``); else None."""
    if not ctx.config.dashboard.enabled:
        return None
    dashboard = DashboardServer(ctx)
    dashboard.start()
    return dashboard
