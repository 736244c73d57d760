"""The dashboard as a WSGI application (werkzeug's routing, requests and cookies).

Invariants:

1. Read-only: only GET and HEAD are routed (anything else is 405), and every endpoint calls
   read functions of node.services.reports, node.services.dashboard_queries and
   node.services.links; nothing here writes to the database or signs.
2. Who may look: on a loopback address anyone on this machine; with
   ``dashboard.token_sha256`` set (required off loopback, node.config) only a request
   bearing the token, as ``Authorization: Bearer``, the ``lapor_dashboard`` cookie, or
   ``?token=`` once (answered with that cookie, HttpOnly, SameSite=Strict). Tokens are
   compared by SHA-256 in constant time and never logged.
3. One error edge (``DashboardApp.__call__`` and ``respond``): endpoints just raise. A
   NodeError is a 4xx page worded for the person reading it (node.web.params): it names
   what to change on the page (never a command-line option), in the page's language;
   /api/ refusals are JSON in English. Anything else is a 500 page with no detail, logged
   once as ``dashboard.failed`` with ``error_type`` and the traceback's frames, never its
   text; if even the error page fails, a plain 500. No refusal repeats a token or anything
   personal.
4. Every response forbids scripts, framing and caching (Content-Security-Policy
   default-src 'none'), so a page cannot leak through a proxy or another site.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from node.errors import NodeError, NotFoundError, ValidationError, frames_of
from node.logs import get_logger
from node.services import certificates, dashboard_queries, reports
from node.services.context import NodeContext
from node.web import pages, params
from node.web.i18n import LANGUAGES, N_, Formats, choose_language

__all__ = ["COOKIE", "LANGUAGE_COOKIE", "PAGE_SIZE", "DashboardApp"]

COOKIE = "lapor_dashboard"
LANGUAGE_COOKIE = "lapor_lang"
PAGE_SIZE = 200
"""Rows of a list on one page (the overdue list, the backlog); the rest are paged."""

_FAILED_TEXT = "500: the dashboard failed; the node's log has the detail.\n"

_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "img-src data:; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Vary": "Accept-Language, Cookie",
}


class DashboardApp:
    """The WSGI application of ``ctx``'s dashboard; ``page_size`` rows per list page."""

    def __init__(self, ctx: NodeContext, *, page_size: int = PAGE_SIZE) -> None:
        self.ctx = ctx
        self.page_size = page_size
        self._token_sha256 = ctx.config.dashboard.token_sha256
        self.log = get_logger(node_id=ctx.node_id)
        endpoints: dict[str, Callable[[Request, Formats, dict[str, Any]], Response]] = {
            "/": self.overview,
            "/overdue": self.overdue,
            "/backlog": self.backlog,
            "/backlog.csv": self.backlog_csv,
            "/complaint": self.trail_by_query,
            "/complaint/<path:tracking_id>": self.trail,
            "/api/report": self.api_report,
            "/api/backlog": self.api_backlog,
            "/api/complaint/<path:tracking_id>": self.api_trail,
            "/healthz": self.healthz,
        }
        self._endpoints = endpoints
        self._map = Map(
            [Rule(path, endpoint=path, methods=["GET", "HEAD"]) for path in endpoints],
            strict_slashes=False,
            merge_slashes=False,
        )

    # --- WSGI --------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """The WSGI edge (invariant 3): nothing escapes to the server, which would print the
        error's text."""
        request = Request(environ)
        try:
            response = self.respond(request)
        except Exception as e:
            self._failed(request, e)
            response = Response(_FAILED_TEXT, status=500, mimetype="text/plain")
            for name, value in _HEADERS.items():
                response.headers[name] = value
        return response(environ, start_response)

    def _failed(self, request: Request, error: Exception) -> None:
        """Log an unexpected failure once: where, never what it says (invariant 3)."""
        self.log.error(
            "dashboard.failed",
            path=request.path[:200],
            error_type=type(error).__name__,
            frames=frames_of(error),
        )

    def respond(self, request: Request) -> Response:
        api = request.path.startswith("/api/")
        asked = request.args.get("lang")
        language = (
            "en"
            if api
            else choose_language(
                asked,
                request.cookies.get(LANGUAGE_COOKIE),
                lambda offered: request.accept_languages.best_match(offered),
            )
        )
        fmt = Formats(language, self.ctx.config.timezone, {})
        allowed, token_cookie = self.authorized(request)
        if not allowed:
            error = params.WebError(
                HTTPStatus.UNAUTHORIZED,
                N_(
                    "This dashboard needs its token: open it once with ?token= followed by "
                    "the token the node's operator gave you."
                ),
            )
            return self._finish(self._refusal(error, fmt, api, request), fmt)
        adapter = self._map.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
            if not api:
                fmt = Formats(language, fmt.timezone, dashboard_queries.unit_names(self.ctx))
            response = self._endpoints[str(endpoint)](request, fmt, dict(values))
        except MethodNotAllowed:
            error = params.WebError(
                HTTPStatus.METHOD_NOT_ALLOWED, N_("The dashboard is read-only: it only shows.")
            )
            response = self._refusal(error, fmt, True, request)
        except NotFound:
            error = params.WebError(
                HTTPStatus.NOT_FOUND,
                N_("There is no page %(path)s here; the dashboard starts at /."),
                path=request.path[:80],
            )
            response = self._refusal(error, fmt, api, request)
        except HTTPException as e:  # e.g. a redirect werkzeug's routing answers itself
            response = e.get_response(request.environ)
        except NodeError as e:
            response = self._refusal(params.web_error(e), fmt, api, request)
        except Exception as e:
            self._failed(request, e)
            error = params.WebError(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                N_("The dashboard could not read this node; the node's log has the detail."),
            )
            # No year on this page: reading it may fail the same way.
            response = self._refusal(error, fmt, api, request, year=None)
        if token_cookie is not None:
            response.set_cookie(COOKIE, token_cookie, httponly=True, samesite="Strict", path="/")
        if asked is not None and asked in LANGUAGES and not api:
            response.set_cookie(LANGUAGE_COOKIE, asked, samesite="Strict", path="/")
        return self._finish(response, fmt)

    def _finish(self, response: Response, fmt: Formats) -> Response:
        for name, value in _HEADERS.items():
            response.headers[name] = value
        if response.mimetype == "text/html":
            response.headers["Content-Language"] = fmt.language
        return response

    def authorized(self, request: Request) -> tuple[bool, str | None]:
        """(allowed, token to set as a cookie) for a request (invariant 2)."""
        if self._token_sha256 is None:
            return True, None
        offered: list[tuple[str, bool]] = []
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            offered.append((auth[len("Bearer ") :].strip(), False))
        if request.cookies.get(COOKIE):
            offered.append((request.cookies[COOKIE], False))
        if request.args.get("token"):
            offered.append((request.args["token"], True))
        for token, from_query in offered:
            digest = hashlib.sha256(token.encode()).digest()
            if hmac.compare_digest(digest, self._token_sha256):
                return True, token if from_query else None
        return False, None

    def _refusal(
        self,
        error: params.WebError,
        fmt: Formats,
        api: bool,
        request: Request,
        **shown: int | None,
    ) -> Response:
        """The page (or /api/ JSON) for `error`; `year=None` leaves the year links out."""
        if api:
            english = Formats("en", fmt.timezone, {})
            body = json.dumps({"error": error.text(english)}, ensure_ascii=False)
            return Response(body, status=error.status.value, mimetype="application/json")
        year = shown["year"] if "year" in shown else params.year_or_none(self.ctx, request.args)
        html = self._render(
            request,
            "error.html",
            fmt,
            status=error.status.value,
            message=error.text(fmt),
            year=year,
        )
        return _html(html, error.status)

    def _render(self, request: Request, template: str, fmt: Formats, **context: Any) -> str:
        """``template`` with the links that show this same page in each language."""
        args = {k: v for k, v in request.args.items() if k not in ("token", "lang")}
        switch = {code: _link(request.path, {**args, "lang": code}) for code in LANGUAGES}
        return pages.render(template, fmt, switch=switch, **context)

    # --- parameters --------------------------------------------------------------------

    def _paging(self, page: int, total: int) -> tuple[int, int]:
        """(offset, number of pages) for ``page`` of a list of ``total``; refuses a page
        past the end."""
        pages_count = max(1, -(-total // self.page_size))
        if page > pages_count:
            raise params.WebError(
                HTTPStatus.NOT_FOUND,
                N_("There is no page %(page)s: this list has %(pages)s pages."),
                page=page,
                pages=pages_count,
            )
        return (page - 1) * self.page_size, pages_count

    # --- pages -------------------------------------------------------------------------

    def overview(self, request: Request, fmt: Formats, _: dict[str, Any]) -> Response:
        year = params.year(self.ctx, request.args)
        document = reports.to_document(reports.report(self.ctx, year, by_child=True))
        overdue = dashboard_queries.overdue_page(self.ctx, year, limit=self.page_size)
        html = self._render(
            request,
            "overview.html",
            fmt,
            report=document,
            overdue=overdue,
            paging=_pager("/overdue", {"year": year}, 1, overdue.total, self.page_size),
            year=year,
            certificate_warnings=certificates.warnings(self.ctx),
        )
        return _html(html)

    def overdue(self, request: Request, fmt: Formats, _: dict[str, Any]) -> Response:
        year = params.year(self.ctx, request.args)
        page = params.page(request.args)
        children = [c.node_id for c in reports.report(self.ctx, year, by_child=True).children]
        child = params.child(request.args, [*children, reports.OWN])
        total = dashboard_queries.overdue_page(self.ctx, year, child=child, limit=1).total
        offset, _pages = self._paging(page, total)
        listed = dashboard_queries.overdue_page(
            self.ctx, year, child=child, offset=offset, limit=self.page_size
        )
        args = {"year": year, "child": child}
        html = self._render(
            request,
            "overdue.html",
            fmt,
            year=year,
            child=child,
            overdue=listed,
            paging=_pager("/overdue", args, page, listed.total, self.page_size),
        )
        return _html(html)

    def _backlog(self, request: Request) -> tuple[reports.Backlog, str | None]:
        year = params.year(self.ctx, request.args)
        deadline = params.deadline(self.ctx, request.args)
        backlog = reports.backlog(self.ctx, year, deadline)
        return backlog, params.child(request.args, backlog.open_by_child)

    def backlog(self, request: Request, fmt: Formats, _: dict[str, Any]) -> Response:
        if not request.args.get("deadline"):
            year = params.year_or_none(self.ctx, request.args) or reports.today(self.ctx).year
            return _html(self._render(request, "backlog_form.html", fmt, year=year))
        backlog, child = self._backlog(request)
        items = [i for i in backlog.items if child is None or i.child == child]
        page = params.page(request.args)
        offset, _pages = self._paging(page, len(items))
        args = {"year": backlog.year, "deadline": backlog.deadline.isoformat(), "child": child}
        html = self._render(
            request,
            "backlog.html",
            fmt,
            backlog=backlog,
            child=child,
            items=items[offset : offset + self.page_size],
            shown=len(items),
            paging=_pager("/backlog", args, page, len(items), self.page_size),
            csv_link=_link("/backlog.csv", args),
            filter_link=lambda c: _link("/backlog", {**args, "child": c}),
            year=backlog.year,
        )
        return _html(html)

    def backlog_csv(self, request: Request, fmt: Formats, _: dict[str, Any]) -> Response:
        backlog, child = self._backlog(request)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(
            [
                *("tracking_id", "child", "child_name", "status", "holder", "confidential"),
                *("submitted_on", "overdue"),
            ]
        )
        for item in backlog.items:
            if child is not None and item.child != child:
                continue
            writer.writerow(
                [
                    *(item.tracking_id, item.child, fmt.names.get(item.child, ""), item.status),
                    *(item.holder, str(item.confidential).lower(), item.submitted_on.isoformat()),
                    "; ".join(item.overdue),
                ]
            )
        name = f"backlog-{self.ctx.node_id}-{backlog.year}-{backlog.deadline.isoformat()}"
        if child is not None and child != reports.OWN:
            name += f"-{child}"
        response = Response(out.getvalue(), mimetype="text/csv")
        response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return response

    def trail_by_query(self, request: Request, fmt: Formats, _: dict[str, Any]) -> Response:
        return self.trail(request, fmt, {"tracking_id": request.args.get("id", "").strip()})

    def trail(self, request: Request, fmt: Formats, values: dict[str, Any]) -> Response:
        document = reports.to_document(self._trail(values["tracking_id"]))
        return _html(self._render(request, "trail.html", fmt, trail=document, year=None))

    def _trail(self, tracking_id: str) -> reports.Trail:
        try:
            return reports.trail(self.ctx, tracking_id)
        except NotFoundError as e:
            raise params.WebError(
                HTTPStatus.NOT_FOUND,
                N_("There is no complaint %(id)s on this node; check the tracking id."),
                id=tracking_id,
            ) from e
        except ValidationError as e:
            raise params.WebError(
                HTTPStatus.BAD_REQUEST,
                N_("“%(id)s” is not a tracking id: one looks like %(example)s."),
                id=tracking_id[:64],
                example=f"{self.ctx.node_id}.{reports.today(self.ctx).year}.000001",
            ) from e

    # --- JSON and health ---------------------------------------------------------------

    def api_report(self, request: Request, fmt: Formats, _: dict[str, Any]) -> Response:
        year = params.year(self.ctx, request.args)
        return _json(reports.to_document(reports.report(self.ctx, year, by_child=True)))

    def api_backlog(self, request: Request, fmt: Formats, _: dict[str, Any]) -> Response:
        year = params.year(self.ctx, request.args)
        return _json(
            reports.to_document(
                reports.backlog(self.ctx, year, params.deadline(self.ctx, request.args))
            )
        )

    def api_trail(self, request: Request, fmt: Formats, values: dict[str, Any]) -> Response:
        return _json(reports.to_document(self._trail(values["tracking_id"])))

    def healthz(self, request: Request, fmt: Formats, _: dict[str, Any]) -> Response:
        return Response("ok\n", mimetype="text/plain")


def _html(text: str, status: HTTPStatus = HTTPStatus.OK) -> Response:
    return Response(text, status=status.value, mimetype="text/html")


def _json(document: Mapping[str, Any]) -> Response:
    body = json.dumps(document, indent=2, ensure_ascii=False)
    return Response(body, mimetype="application/json")


def _link(path: str, args: Mapping[str, Any]) -> str:
    query = urlencode({k: v for k, v in args.items() if v is not None})
    return f"{path}?{query}" if query else path


def _pager(path: str, args: Mapping[str, Any], page: int, total: int, size: int) -> dict[str, Any]:
    """What a list's heading and its page links need: rows first..last of total."""
    pages_count = max(1, -(-total // size))
    first = 0 if total == 0 else (page - 1) * size + 1
    last = min(total, page * size)
    return {
        "first": first,
        "last": last,
        "shown": max(0, last - first + 1) if total else 0,
        "total": total,
        "page": page,
        "pages": pages_count,
        "previous": _link(path, {**args, "page": page - 1}) if page > 1 else None,
        "next": _link(path, {**args, "page": page + 1}) if page < pages_count else None,
        "rest": _link(path, {**args, "page": 2}) if page == 1 and pages_count > 1 else None,
    }
