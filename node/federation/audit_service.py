"""`lapor.v1.AuditService`: read-only access to this node's ledger, on the federation port.

Who may call: a linked peer (its pinned certificate, as for Exchange) or an auditor whose
certificate node.yaml lists under `auditors:`. The runtime identifies the caller from the
certificate the TLS handshake verified (never from a message field); anyone else is
refused with UNAUTHENTICATED. Each call then:
  1. counts and logs who called which method (metrics AUDIT_CALLS, never any content);
  2. reads through node.services.audit in the reader pool, never on the event loop;
  3. raises what it refuses (arguments outside the ledger: ValidationError); the one error
     edge (node.federation.error_edge) answers it with its status, and anything
     unexpected with INTERNAL, logged.

GetEntries and ListCheckpoints stream a page of rows per read transaction, so any range may
be asked for in one call and the node's memory stays bounded by one page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc

from node._proto.lapor.v1 import audit_pb2
from node.errors import UnauthenticatedError
from node.logs import get_logger
from node.metrics import AUDIT_CALLS
from node.services import audit
from node.services.context import NodeContext

__all__ = ["AuditServicer", "Caller"]

T = TypeVar("T")


@dataclass(frozen=True)
class Caller:
    """Who is calling, from the verified client certificate: a linked peer or an auditor."""

    kind: str  # "peer" or "auditor"
    name: str  # the peer's node id, or the auditor's name from node.yaml


class Reader(Protocol):
    """Runs a blocking database read off the event loop."""

    async def read(self, fn: Callable[..., T], *args: Any) -> T: ...


class AuditServicer:
    """The Audit service's methods; `identify` names the caller of a call, or None."""

    def __init__(
        self,
        ctx: NodeContext,
        db: Reader,
        identify: Callable[[grpc.aio.ServicerContext], Caller | None],
    ) -> None:
        self._ctx = ctx
        self._db = db
        self._identify = identify
        self._log = get_logger(node_id=ctx.node_id)

    async def _admit(self, context: grpc.aio.ServicerContext, method: str) -> Caller:
        caller = self._identify(context)
        if caller is None:
            raise UnauthenticatedError(
                "client certificate is pinned by this node neither as a linked peer's nor "
                "as a listed auditor's"
            )
        AUDIT_CALLS.labels(caller_kind=caller.kind, method=method).inc()
        self._log.info("audit.call", method=method, caller_kind=caller.kind, caller=caller.name)
        return caller

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(ctx, *args)` in the reader pool; what it raises goes to the error edge."""
        return await self._db.read(fn, self._ctx, *args)

    async def GetCheckpoint(
        self, request: audit_pb2.GetCheckpointRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.GetCheckpointResponse:
        await self._admit(context, "GetCheckpoint")
        head = await self._read(audit.head)
        response = audit_pb2.GetCheckpointResponse(
            vkey=head.vkey,
            ledger_size=head.ledger_size,
            first_vkey="" if head.first_vkey == head.vkey else head.first_vkey,
            trust_chain=head.trust_chain,
        )
        if head.checkpoint is not None:
            response.note = head.checkpoint.note
            response.size = head.checkpoint.size
            response.signed_at.FromDatetime(head.checkpoint.signed_at)
        return response

    async def GetEntries(
        self, request: audit_pb2.GetEntriesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[audit_pb2.GetEntriesResponse]:
        method = "GetEntries"
        await self._admit(context, method)
        start, end = request.start, request.end
        await self._read(audit.check_entry_range, start, end)
        position = start
        while position < end:
            page = await self._read(audit.entries_page, position, end)
            for index, entry, leaf in page:
                yield audit_pb2.GetEntriesResponse(index=index, entry=entry, leaf_hash=leaf or b"")
            # Rows missing from the store leave a gap the verifier names; skip past it.
            position = page[-1][0] + 1 if page else min(end, position + audit.ENTRY_PAGE)

    async def ListCheckpoints(
        self, request: audit_pb2.ListCheckpointsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[audit_pb2.ListCheckpointsResponse]:
        method = "ListCheckpoints"
        await self._admit(context, method)
        first, last = request.first_size, request.last_size
        await self._read(audit.check_checkpoint_range, first, last)
        while first <= last:
            page = await self._read(audit.checkpoints_page, first, last)
            for size, note in page:
                yield audit_pb2.ListCheckpointsResponse(size=size, note=note)
            if len(page) < audit.CHECKPOINT_PAGE:
                return
            first = page[-1][0] + 1

    async def GetInclusionProof(
        self, request: audit_pb2.GetInclusionProofRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.GetInclusionProofResponse:
        method = "GetInclusionProof"
        await self._admit(context, method)
        proof = await self._read(audit.inclusion, request.leaf_index, request.tree_size)
        return audit_pb2.GetInclusionProofResponse(
            leaf_index=proof.index,
            tree_size=proof.size,
            entry=proof.entry,
            leaf_hash=proof.leaf_hash,
            audit_path=list(proof.path),
            root=proof.root,
            checkpoint_note=proof.note or b"",
        )

    async def GetConsistencyProof(
        self, request: audit_pb2.GetConsistencyProofRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.GetConsistencyProofResponse:
        method = "GetConsistencyProof"
        await self._admit(context, method)
        proof = await self._read(audit.consistency, request.first_size, request.second_size)
        return audit_pb2.GetConsistencyProofResponse(
            first_size=proof.first,
            second_size=proof.second,
            proof=list(proof.proof),
            first_root=proof.first_root,
            second_root=proof.second_root,
            first_checkpoint_note=proof.first_note or b"",
            second_checkpoint_note=proof.second_note or b"",
        )
