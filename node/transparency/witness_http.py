"""The C2SP tlog-witness `add-checkpoint` endpoint as a WSGI application (werkzeug).

    POST <submission prefix>/add-checkpoint

Request body (c2sp.org/tlog-witness, "add-checkpoint"): `old <size>\\n` (ASCII decimal, no
leading zeroes), at most 63 consistency proof lines (base64 of one 32-byte hash each), an
empty line, then the signed checkpoint note. Responses, as the spec fixes them:

    200  text/plain            the cosignature line(s) (node.services.cosigning)
    400  text/plain            a malformed body, or an old size beyond the checkpoint's
    403  text/plain            no signature by a key trusted for the origin verifies
    404  text/plain            the origin is not a log this node witnesses
    409  text/x.tlog.size      the old size is not the size held (body: that size and \\n),
                               or the same size with another root
    422  text/plain            the consistency proof does not verify

Invariants: the request is parsed completely before anything is read or written; the
check of the old size and the store of the new head are one write transaction
(node.services.cosigning.add_checkpoint); error bodies are one line and carry no secret.
The app knows only its own path: the merger mounts it under the transparency listener.
The same handler answers the requests a linked peer sends inside the link (decision 0032).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from node.errors import (
    NotFoundError,
    ProofError,
    SignatureError,
    TooLargeError,
    ValidationError,
)
from node.ids import NodeId
from node.ledger.merkle import HASH_SIZE
from node.ledger.note import MAX_NOTE_SIZE
from node.logs import get_logger
from node.services import cosigning
from node.services.context import NodeContext

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "MAX_PROOF_LINES",
    "AddCheckpointRequest",
    "handle_add_checkpoint",
    "make_witness_app",
    "parse_request",
]

MAX_PROOF_LINES = 63
MAX_BODY = MAX_NOTE_SIZE + 64 * 64
_OLD = re.compile(rb"old (0|[1-9][0-9]{0,18})\n")
_log = get_logger()


@dataclass(frozen=True)
class AddCheckpointRequest:
    old_size: int
    proof: tuple[bytes, ...]
    note: bytes


def parse_request(body: bytes) -> AddCheckpointRequest:
    """Parse an add-checkpoint body strictly; raise ValidationError (400) if malformed."""
    if len(body) > MAX_BODY:
        raise TooLargeError(f"expected a body of at most {MAX_BODY} bytes, found {len(body)}")
    first = body.find(b"\n") + 1
    match = _OLD.fullmatch(body[:first])
    if first == 0 or match is None:
        raise ValidationError("expected the first line to be 'old <size>' in decimal")
    proof: list[bytes] = []
    at = first
    while True:
        end = body.find(b"\n", at)
        if end < 0:
            raise ValidationError("expected an empty line before the checkpoint, found none")
        line = body[at:end]
        at = end + 1
        if not line:
            break
        if len(proof) == MAX_PROOF_LINES:
            raise ValidationError(f"expected at most {MAX_PROOF_LINES} proof lines")
        proof.append(_hash(line, len(proof)))
    note = body[at:]
    if not note:
        raise ValidationError("expected a checkpoint note after the empty line, found none")
    return AddCheckpointRequest(int(match.group(1)), tuple(proof), note)


def _hash(line: bytes, i: int) -> bytes:
    try:
        raw = base64.b64decode(line, validate=True)
    except binascii.Error as e:
        raise ValidationError(f"expected proof line {i} in base64") from e
    if len(raw) != HASH_SIZE or base64.b64encode(raw) != line:
        raise ValidationError(f"expected proof line {i} to be one {HASH_SIZE}-byte hash")
    return raw


def handle_add_checkpoint(
    ctx: NodeContext, body: bytes, peer: NodeId | None = None
) -> tuple[int, str, bytes]:
    """Answer one add-checkpoint body: (HTTP status, content type, response body). With
    `peer`, the request came inside that peer's link (node.federation.cosign_link): only
    its own log is witnessed (404 for any other), as its link cosigner (decision 0032)."""
    try:
        request = parse_request(body)
        line = cosigning.add_checkpoint(
            ctx, request.old_size, request.proof, request.note, peer=peer
        )
    except cosigning.WitnessConflict as e:
        return 409, cosigning.SIZE_CONTENT_TYPE, f"{e.size}\n".encode("ascii")
    except NotFoundError as e:
        return _text(404, e)
    except SignatureError as e:
        return _text(403, e)
    except ProofError as e:
        return _text(422, e)
    except ValidationError as e:
        return _text(400, e)
    except Exception as e:  # the one edge: anything unexpected is a 500, logged in full
        _log.exception("witness.failed", error_kind=type(e).__name__)
        return 500, "text/plain; charset=utf-8", b"internal error\n"
    return 200, "text/plain; charset=utf-8", line.encode("utf-8")


def _text(status: int, error: Exception) -> tuple[int, str, bytes]:
    message = str(error).replace("\n", " ")[:300]
    _log.info("witness.refused", status=status, error=message)
    return status, "text/plain; charset=utf-8", (message + "\n").encode("utf-8")


def make_witness_app(ctx: NodeContext) -> WSGIApplication:
    """The WSGI app serving `/add-checkpoint` for `ctx`'s node (404 elsewhere)."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.rstrip("/").rsplit("/", 1)[-1] != "add-checkpoint":
            response = Response("not found\n", 404, mimetype="text/plain")
        elif request.method != "POST":
            response = Response("add-checkpoint takes POST\n", 405, mimetype="text/plain")
            response.headers["Allow"] = "POST"
        elif (request.content_length or 0) > MAX_BODY:
            response = Response("request body too large\n", 413, mimetype="text/plain")
        else:
            status, content_type, body = handle_add_checkpoint(ctx, request.get_data(cache=False))
            response = Response(body, status, content_type=content_type)
        result: Any = response(environ, start_response)
        return result  # type: ignore[no-any-return]

    return app
