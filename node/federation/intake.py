"""The Intake service on the wire (lapor.v1.IntakeService, docs/intake.md): channel gateways
submit complaints to the node where they enter.

Transport: TLS with the node's own certificate on `intake.listen`, no client certificate
(gateways are not nodes; they pin the certificate's SHA-256 instead). Every call carries
`authorization: Bearer <token>`; the gateway is the one configured with SHA-256(token).

Order of checks on Submit, each refusal ending the call before anything is stored:
  1. the token names a configured gateway, else UNAUTHENTICATED;
  2. the first message is a well-formed Submission, else INVALID_ARGUMENT; declared
     attachments within the node's limits, else RESOURCE_EXHAUSTED;
  3. its channel is one the gateway may submit for, else PERMISSION_DENIED;
  4. the attachment chunks arrive in order and each attachment matches its declared size
     and SHA-256, else INVALID_ARGUMENT;
  5. node.services.intake.accept registers it in one transaction on the writer thread
     (a retry: the first tracking id, duplicate = true; the key reused for something
     else: ALREADY_EXISTS).
Every outcome is counted in lapor_node_intake_submissions_total; logs name the gateway,
channel and tracking id, never the complaint's content.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from node._proto.lapor.v1 import intake_pb2, intake_pb2_grpc
from node.complaints import ComplaintDraft
from node.config import GatewayConfig
from node.errors import ConfigError, NodeError, PermissionDeniedError, ValidationError
from node.federation.session import DbRunner
from node.federation.status import status_for
from node.logs import get_logger
from node.metrics import CALLS_REFUSED, INTAKE_SUBMISSIONS
from node.services import intake
from node.services.context import NodeContext

__all__ = [
    "MAX_CONCURRENT_CALLS",
    "MAX_MESSAGE_BYTES",
    "IntakeServer",
    "IntakeServicer",
    "start_intake",
]

# A chunk of at most MAX_CHUNK_BYTES plus its framing; a Submission is far smaller.
MAX_MESSAGE_BYTES = intake.MAX_CHUNK_BYTES + 64 * 1024
# Calls served at once: a submission holds its files in memory (at most
# intake.max_total_bytes) until it commits, so this bounds intake's memory. Further calls
# are refused by gRPC with RESOURCE_EXHAUSTED; gateways retry them with the same key.
MAX_CONCURRENT_CALLS = 16


class _Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class IntakeServicer(intake_pb2_grpc.IntakeServiceServicer):
    """Submit and GetStatus for the gateways node.yaml lists."""

    def __init__(self, ctx: NodeContext, db: DbRunner) -> None:
        self.ctx = ctx
        self.db = db
        self.log = get_logger(node_id=ctx.node_id)

    def _gateway(self, context: grpc.aio.ServicerContext) -> GatewayConfig:
        token = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str):
                scheme, _, token = value.partition(" ")
                token = token.strip() if scheme.lower() == "bearer" else ""
        gateway = intake.gateway_for(self.ctx.config.intake, token) if token else None
        if gateway is None:
            raise _Refused(
                grpc.StatusCode.UNAUTHENTICATED,
                "no gateway of this node has this token: send `authorization: Bearer "
                "<token>` with the token `lapor-node intake gateway add` issued, and ask the "
                "node's operator to list the gateway in node.yaml (intake.gateways)",
            )
        return gateway

    async def _receive(
        self, requests: AsyncIterator[intake_pb2.SubmitRequest], gateway: GatewayConfig
    ) -> tuple[ComplaintDraft, str, list[intake.Received]]:
        draft: ComplaintDraft | None = None
        key = ""
        receiver: intake.AttachmentReceiver | None = None
        async for request in requests:
            part = request.WhichOneof("part")
            if receiver is None:
                if part != "submission":
                    raise ValidationError("the first message must carry the submission")
                key = request.submission.idempotency_key
                intake.validate_key(key)
                draft = intake.draft_from_submission(request.submission)
                if draft.channel not in gateway.channels:
                    raise PermissionDeniedError(
                        f"gateway {gateway.name!r} may submit for "
                        f"{', '.join(gateway.channels)}, not {draft.channel}; the node's "
                        "operator can allow it in node.yaml (intake.gateways)"
                    )
                receiver = intake.AttachmentReceiver(draft.attachments, self.ctx.config.intake)
            elif part == "chunk":
                receiver.add(request.chunk.index, request.chunk.data)
            else:
                raise ValidationError("only attachment chunks may follow the submission")
        if receiver is None or draft is None:
            raise ValidationError("the stream ended before a submission arrived")
        return draft, key, receiver.finish()

    async def Submit(
        self,
        request_iterator: AsyncIterator[intake_pb2.SubmitRequest],
        context: grpc.aio.ServicerContext,
    ) -> intake_pb2.SubmitResponse:
        channel = "unknown"
        gateway_name = None
        try:
            gateway = self._gateway(context)
            gateway_name = gateway.name
            draft, key, attachments = await self._receive(request_iterator, gateway)
            channel = draft.channel
            result = await self.db.write(
                functools.partial(
                    intake.accept, self.ctx, draft, attachments, gateway=gateway, key=key
                )
            )
        except _Refused as e:
            await self._refuse(context, "Submit", channel, gateway_name, e.code, e.message)
            raise  # pragma: no cover - abort raises
        except intake.IdempotencyConflictError as e:
            code = grpc.StatusCode.ALREADY_EXISTS
            await self._refuse(context, "Submit", channel, gateway_name, code, str(e))
            raise  # pragma: no cover - abort raises
        except NodeError as e:
            await self._refuse(context, "Submit", channel, gateway_name, status_for(e), str(e))
            raise  # pragma: no cover - abort raises
        except Exception as e:
            if isinstance(e, grpc.aio.AbortError | grpc.RpcError):
                raise
            INTAKE_SUBMISSIONS.labels(channel=channel, outcome="INTERNAL").inc()
            self.log.error("intake.failed", gateway=gateway_name, error_kind=type(e).__name__)
            await context.abort(
                grpc.StatusCode.INTERNAL,
                f"{self.ctx.node_id} failed to register the submission "
                f"({type(e).__name__}); retry with the same idempotency key, and tell the "
                "node's operator if it persists",
            )
            raise  # pragma: no cover - abort raises
        outcome = "duplicate" if result.duplicate else "created"
        INTAKE_SUBMISSIONS.labels(channel=channel, outcome=outcome).inc()
        self.log.info(
            "intake.accepted",
            gateway=gateway_name,
            channel=channel,
            complaint_id=result.tracking_id,
            duplicate=result.duplicate,
            attachments=len(attachments),
        )
        response = intake_pb2.SubmitResponse(
            tracking_id=result.tracking_id, duplicate=result.duplicate
        )
        response.submitted_at.FromDatetime(result.submitted_at)
        return response

    async def GetStatus(
        self, request: intake_pb2.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> intake_pb2.GetStatusResponse:
        gateway_name = None
        try:
            gateway = self._gateway(context)
            gateway_name = gateway.name
            view = await self.db.read(intake.status, self.ctx, gateway, request.tracking_id)
        except _Refused as e:
            await self._refuse(context, "GetStatus", None, gateway_name, e.code, e.message)
            raise  # pragma: no cover - abort raises
        except NodeError as e:
            code = status_for(e)
            await self._refuse(context, "GetStatus", None, gateway_name, code, str(e))
            raise  # pragma: no cover - abort raises
        response = intake_pb2.GetStatusResponse(tracking_id=view.tracking_id, status=view.status)
        response.updated_at.FromDatetime(view.updated_at)
        return response

    async def _refuse(
        self,
        context: grpc.aio.ServicerContext,
        method: str,
        channel: str | None,
        gateway: str | None,
        code: grpc.StatusCode,
        message: str,
    ) -> None:
        CALLS_REFUSED.labels(method=f"Intake.{method}", code=code.name).inc()
        if channel is not None:
            INTAKE_SUBMISSIONS.labels(channel=channel, outcome=code.name).inc()
        self.log.warning(
            "intake.refused",
            method=method,
            gateway=gateway,
            channel=channel,
            code=code.name,
            reason=message,
            peer_address=context.peer(),
        )
        await context.abort(code, message)


@dataclass
class IntakeServer:
    """The running Intake server and the port it bound."""

    server: grpc.aio.Server
    port: int

    async def stop(self, grace: float) -> None:
        await self.server.stop(grace)


async def start_intake(
    ctx: NodeContext,
    db: DbRunner,
    key_pem: bytes,
    cert_pem: bytes,
    fetch_identity: Callable[[], Any] | None = None,
) -> IntakeServer | None:
    """Serve intake on `intake.listen` (None when it is off). A port that cannot be bound
    stops the node: the operator asked for it explicitly. `fetch_identity` (called at each
    handshake; None keeps the certificate) presents the new certificate after a key
    rotation, as the enrollment port does."""
    cfg = ctx.config.intake
    log = get_logger(node_id=ctx.node_id)
    if not cfg.enabled:
        return None
    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ],
        maximum_concurrent_rpcs=MAX_CONCURRENT_CALLS,
    )
    intake_pb2_grpc.add_IntakeServiceServicer_to_server(IntakeServicer(ctx, db), server)  # type: ignore[no-untyped-call]
    creds = grpc.dynamic_ssl_server_credentials(
        grpc.ssl_server_certificate_configuration([(key_pem, cert_pem)]),
        fetch_identity or (lambda: None),
        require_client_authentication=False,
    )
    try:
        port = server.add_secure_port(cfg.listen, creds)
    except RuntimeError:
        port = 0
    if port == 0:
        raise ConfigError(
            f"cannot listen for gateways on {cfg.listen} (intake.listen); use a free port, "
            'or "" to turn intake off'
        )
    await server.start()
    if not cfg.gateways:
        log.warning(
            "intake.no_gateways",
            action="add one with `lapor-node intake gateway add NAME --channel CHANNEL`, "
            "then restart serve",
        )
    log.info("intake.started", listen=cfg.listen, port=port, gateways=len(cfg.gateways))
    return IntakeServer(server, port)
