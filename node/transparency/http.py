"""The ledger over HTTP as C2SP tlog-tiles (c2sp.org/tlog-tiles): a read-only WSGI
application and the server that runs it in a thread of `serve` (`transparency.listen`).

Invariants:

1. Read-only and public: only GET and HEAD (else 405), except `add-checkpoint`, the
   tlog-witness endpoint, which `witness_http` answers for the logs this node witnesses
   (C2SP tlog-witness: POST); every other response is built by
   node.services.audit's reads (`checkpoint_body_and_signatures`, `tile_data`), which
   read the persisted tree: a tile costs two small queries (the latest checkpoint's size,
   then the tile's range of stored nodes or entries), whatever the ledger's size.
2. Exactly the spec's resources: `checkpoint` (text/plain; charset=utf-8),
   `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]` (application/octet-stream);
   anything else, and any tile the latest checkpoint does not hold yet, is 404.
3. Caching ("Checkpoints", "Merkle Tree"): the checkpoint for a few seconds; full tiles
   and bundles, which never change, for a year and immutable; partial ones briefly (a
   log may drop them once the full tile exists).
4. Entry bundles are gzip-encoded when the client accepts gzip ("Log entries").
5. Errors are one line of text; anything unexpected is 500, logged with its detail.
   Requests are logged at debug level by path only.
"""

from __future__ import annotations

import gzip
import ssl
import threading
from collections.abc import Iterable
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from node.errors import ConfigError, NodeError, ValidationError
from node.logs import get_logger
from node.services import audit
from node.services.context import NodeContext
from node.transparency.tiles import parse_path
from node.transparency.witness_http import make_witness_app

__all__ = [
    "CHECKPOINT_CACHE",
    "FULL_TILE_CACHE",
    "PARTIAL_TILE_CACHE",
    "TransparencyApp",
    "TransparencyServer",
    "start_transparency",
]

CHECKPOINT_CACHE = "public, max-age=5"
FULL_TILE_CACHE = "public, max-age=31536000, immutable"
PARTIAL_TILE_CACHE = "public, max-age=60"
_OCTETS = "application/octet-stream"


class TransparencyApp:
    """The tlog-tiles WSGI application of `ctx`'s ledger, at the URL prefix `/`."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.log = get_logger(node_id=ctx.node_id)
        self.witness = make_witness_app(ctx)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.strip("/") == "add-checkpoint":
            return self.witness(environ, start_response)
        try:
            response = self.respond(request)
        except NodeError as e:  # the tree is incomplete, or the database is unreadable
            self.log.error("transparency.failed", path=request.path, error=str(e))
            response = _text("the ledger cannot be read now; try again later\n", 500)
        except Exception:  # invariant 5: never a traceback to a client
            self.log.exception("transparency.failed", path=request.path)
            response = _text("internal error\n", 500)
        return response(environ, start_response)

    def respond(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            response = _text("read-only: only GET and HEAD\n", 405)
            response.headers["Allow"] = "GET, HEAD"
            return response
        path = request.path.lstrip("/")
        if path == "checkpoint":
            return self.checkpoint()
        if path.startswith("tile/"):
            return self.tile(request, path)
        return _text("not found: this log serves checkpoint and tile/...\n", 404)

    def checkpoint(self) -> Response:
        head = audit.checkpoint_body_and_signatures(self.ctx)
        if head is None:
            return _text("no checkpoint signed yet\n", 404)
        response = Response(head.note, content_type="text/plain; charset=utf-8")
        response.headers["Cache-Control"] = CHECKPOINT_CACHE
        return response

    def tile(self, request: Request, path: str) -> Response:
        try:
            tile = parse_path(path)
        except ValidationError as e:
            return _text(f"not found: {e}\n", 404)
        data = audit.tile_data(self.ctx, tile)
        if data is None:
            return _text(f"not found: {tile.path()} is beyond the latest checkpoint\n", 404)
        headers = Headers()
        headers["Cache-Control"] = PARTIAL_TILE_CACHE if tile.is_partial else FULL_TILE_CACHE
        if tile.is_bundle:
            headers["Vary"] = "Accept-Encoding"
            if request.accept_encodings.quality("gzip") > 0:
                data = gzip.compress(data, mtime=0)
                headers["Content-Encoding"] = "gzip"
        return Response(data, headers=headers, content_type=_OCTETS)


def _text(message: str, status: int) -> Response:
    response = Response(message, status=status, content_type="text/plain; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's handler, logging the path alone (invariant 5)."""

    server_version = "lapor-node-tiles"
    sys_version = ""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        get_logger().debug("transparency.request", path=self.path, status=str(code))

    def log_error(self, format: str, *args: Any) -> None:
        get_logger().debug("transparency.request_failed", path=self.path)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class TransparencyServer:
    """Serve `ctx`'s ledger as tlog-tiles on `transparency.listen` until stopped: plain
    HTTP, or HTTPS with the node's TLS certificate when `transparency.tls` is true."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        cfg = ctx.config.transparency
        self.log = get_logger(node_id=ctx.node_id)
        self.app = TransparencyApp(ctx)
        context = None
        if cfg.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(ctx.config.tls_cert, ctx.config.tls_key)
        host, port = cfg.address
        try:
            self._httpd = make_server(
                host,
                port,
                self.app,
                threaded=True,
                request_handler=_QuietHandler,
                ssl_context=context,
            )
        except (OSError, SystemExit) as e:
            # werkzeug exits (SystemExit) when the port is taken; either way say what to do.
            why = e.strerror if isinstance(e, OSError) else "address in use"
            raise ConfigError(
                f"cannot serve the ledger's tiles on {cfg.listen} ({why}); change or empty "
                "transparency.listen in node.yaml"
            ) from e
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="transparency", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        cfg = self.ctx.config.transparency
        self.log.info("transparency.started", listen=cfg.listen, port=self.port, tls=cfg.tls)

    def stop(self) -> None:
        """Stop serving and close the socket (blocks until the serving loop ends)."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def start_transparency(ctx: NodeContext) -> TransparencyServer | None:
    """Start the tiles server if node.yaml turns it on (`transparency.listen`); else None."""
    if not ctx.config.transparency.enabled:
        return None
    server = TransparencyServer(ctx)
    server.start()
    return server
