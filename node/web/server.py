"""The dashboard's HTTP server: read-only, standard library only (http.server in a thread).

Invariants:

1. Read-only: only GET and HEAD are served (anything else is 405), and every handler
   calls read functions of node.services.reports, node.services.complaints and (the
   certificate warnings on the overview) node.services.certificates; nothing
   here writes to the database or signs.
2. Who may look: on a loopback address anyone on this machine; with
   ``dashboard.token_sha256`` set (required off loopback, node.config) only a request
   bearing the token, as ``Authorization: Bearer``, the ``lapor_dashboard`` cookie, or
   ``?token=`` once (answered with that cookie, HttpOnly, SameSite=Strict). Tokens are
   compared by SHA-256 in constant time and never logged.
3. Errors: a NodeError becomes a page (or JSON) with its message and 400/404; anything
   else is 500 with a generic message, logged with its detail.
4. Every response forbids scripts, framing and caching (Content-Security-Policy
   default-src 'none'), so a page cannot leak through a proxy or another site.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from node.errors import ConfigError, NodeError, NotFoundError, ValidationError
from node.logs import get_logger
from node.services import certificates, complaints, reports
from node.services.context import NodeContext
from node.web.pages import error_page, overview_page, trail_page

__all__ = ["COOKIE", "DashboardServer", "start_dashboard"]

COOKIE = "lapor_dashboard"
OVERDUE_LIMIT = 200
"""Overdue complaints listed on the overview at most (the JSON backlog has them all)."""

_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "img-src data:; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class _Refused(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def _year(ctx: NodeContext, query: dict[str, list[str]]) -> int:
    raw = query.get("year", [""])[0]
    if not raw:
        return reports.today(ctx).year
    if not raw.isdigit():
        raise ValidationError(f"year must be a number such as 2026, found {raw!r}")
    return int(raw)


class DashboardServer:
    """Serve the dashboard of ``ctx``'s node on ``dashboard.listen`` until stopped."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        cfg = ctx.config.dashboard
        self._token_sha256 = cfg.token_sha256
        self.log = get_logger(node_id=ctx.node_id)
        host, port = cfg.address
        handler = _handler_for(self)
        try:
            self._httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as e:
            raise ConfigError(
                f"cannot serve the dashboard on {cfg.listen} ({e.strerror}); change or remove "
                "dashboard.listen in node.yaml"
            ) from e
        self._httpd.daemon_threads = True
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

    # --- requests ------------------------------------------------------------------------

    def authorized(self, headers: Any, query: dict[str, list[str]]) -> tuple[bool, str | None]:
        """(allowed, token to set as a cookie) for a request (invariant 2)."""
        if self._token_sha256 is None:
            return True, None
        offered: list[tuple[str, bool]] = []
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            offered.append((auth[len("Bearer ") :].strip(), False))
        for part in headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and value:
                offered.append((value, False))
        if query.get("token"):
            offered.append((query["token"][0], True))
        for token, from_query in offered:
            digest = hashlib.sha256(token.encode()).digest()
            if hmac.compare_digest(digest, self._token_sha256):
                return True, token if from_query else None
        return False, None

    def route(self, path: str, query: dict[str, list[str]]) -> tuple[str, bytes]:
        """(content type, body) for a GET of ``path``; raises _Refused or NodeError."""
        ctx = self.ctx
        if path == "/":
            year = _year(ctx, query)
            document = reports.to_document(reports.report(ctx, year, by_child=True))
            overdue = self._overdue(year)
            warnings = certificates.warnings(ctx)
            return _html(overview_page(document, overdue, f"?year={year}", warnings))
        if path == "/api/report":
            year = _year(ctx, query)
            return _json(reports.to_document(reports.report(ctx, year, by_child=True)))
        if path == "/api/backlog":
            year = _year(ctx, query)
            raw = query.get("deadline", [""])[0]
            try:
                deadline = dt.date.fromisoformat(raw)
            except ValueError as e:
                raise ValidationError(f"deadline must be YYYY-MM-DD, found {raw!r}") from e
            return _json(reports.to_document(reports.backlog(ctx, year, deadline)))
        if path == "/complaint" and query.get("id"):
            return _html(trail_page(reports.to_document(reports.trail(ctx, query["id"][0]))))
        if path.startswith("/complaint/"):
            document = reports.to_document(reports.trail(ctx, path[len("/complaint/") :]))
            return _html(trail_page(document))
        if path.startswith("/api/complaint/"):
            return _json(reports.to_document(reports.trail(ctx, path[len("/api/complaint/") :])))
        if path == "/healthz":
            return "text/plain; charset=utf-8", b"ok\n"
        raise _Refused(HTTPStatus.NOT_FOUND, f"no page {path}; the dashboard is at /")

    def _overdue(self, year: int) -> list[dict[str, Any]]:
        views = complaints.list_complaints(
            self.ctx, year=year, overdue_only=True, limit=OVERDUE_LIMIT
        )
        return [
            {
                "tracking_id": v.tracking_id,
                "child": v.referred_to or reports.OWN,
                "status": v.status,
                "holder": v.holder,
                "confidential": v.confidential,
                "overdue": list(v.overdue),
            }
            for v in views
        ]


def _html(text: str) -> tuple[str, bytes]:
    return "text/html; charset=utf-8", text.encode()


def _json(document: dict[str, Any]) -> tuple[str, bytes]:
    return "application/json", json.dumps(document, indent=2, ensure_ascii=False).encode()


def _status_for(error: NodeError) -> HTTPStatus:
    return HTTPStatus.NOT_FOUND if isinstance(error, NotFoundError) else HTTPStatus.BAD_REQUEST


def _handler_for(server: DashboardServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "lapor-node-dashboard"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            # Paths may carry ?token=: log the method and the path only, never the query.
            server.log.debug("dashboard.request", path=urlsplit(self.path).path)

        def _send(
            self, status: HTTPStatus, ctype: str, body: bytes, cookie: str | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for name, value in _HEADERS.items():
                self.send_header(name, value)
            if cookie is not None:
                self.send_header(
                    "Set-Cookie", f"{COOKIE}={cookie}; HttpOnly; SameSite=Strict; Path=/"
                )
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _fail(self, status: HTTPStatus, message: str, api: bool, year: int | None) -> None:
            if api:
                body = json.dumps({"error": message}).encode()
                self._send(status, "application/json", body)
            else:
                self._send(status, *_html(error_page(status.value, message, year)))

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            path, query = unquote(url.path), parse_qs(url.query)
            api = path.startswith("/api/")
            allowed, cookie = server.authorized(self.headers, query)
            if not allowed:
                self._fail(
                    HTTPStatus.UNAUTHORIZED,
                    "this dashboard needs its token: open it with ?token=TOKEN once, or send "
                    "Authorization: Bearer TOKEN (ask the node's operator)",
                    api,
                    None,
                )
                return
            try:
                ctype, body = server.route(path, query)
            except _Refused as e:
                self._fail(e.status, str(e), api, None)
            except NodeError as e:
                year = None if api else _safe_year(server.ctx, query)
                self._fail(_status_for(e), str(e), api, year)
            except Exception as e:
                server.log.error(
                    "dashboard.failed", path=path, error_kind=type(e).__name__, error=str(e)
                )
                self._fail(
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    "the dashboard failed to read this node; the node's log has the detail",
                    api,
                    None,
                )
            else:
                self._send(HTTPStatus.OK, ctype, body, cookie)

        def do_HEAD(self) -> None:
            self.do_GET()

        def _not_allowed(self) -> None:
            self._fail(HTTPStatus.METHOD_NOT_ALLOWED, "the dashboard is read-only", True, None)

        do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed

    return Handler


def _safe_year(ctx: NodeContext, query: dict[str, list[str]]) -> int | None:
    try:
        return _year(ctx, query)
    except NodeError:
        return None


def start_dashboard(ctx: NodeContext) -> DashboardServer | None:
    """Start the dashboard if node.yaml turns it on (``dashboard.listen``); else None."""
    if not ctx.config.dashboard.enabled:
        return None
    dashboard = DashboardServer(ctx)
    dashboard.start()
    return dashboard
