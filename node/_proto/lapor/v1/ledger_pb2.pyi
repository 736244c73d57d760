import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from node._proto.lapor.v1 import complaint_pb2 as _complaint_pb2
from node._proto.lapor.v1 import envelope_pb2 as _envelope_pb2
from node._proto.lapor.v1 import trust_pb2 as _trust_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PeerRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PEER_ROLE_UNSPECIFIED: _ClassVar[PeerRole]
    PEER_ROLE_PARENT: _ClassVar[PeerRole]
    PEER_ROLE_CHILD: _ClassVar[PeerRole]

class ForkKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FORK_KIND_UNSPECIFIED: _ClassVar[ForkKind]
    FORK_KIND_SAME_SIZE: _ClassVar[ForkKind]
    FORK_KIND_INCONSISTENT: _ClassVar[ForkKind]
    FORK_KIND_ROLLBACK: _ClassVar[ForkKind]
PEER_ROLE_UNSPECIFIED: PeerRole
PEER_ROLE_PARENT: PeerRole
PEER_ROLE_CHILD: PeerRole
FORK_KIND_UNSPECIFIED: ForkKind
FORK_KIND_SAME_SIZE: ForkKind
FORK_KIND_INCONSISTENT: ForkKind
FORK_KIND_ROLLBACK: ForkKind

class LedgerEntry(_message.Message):
    __slots__ = ("node_id", "recorded_at", "complaint_registered", "referral_sent", "referral_received", "receipt_received", "link_established", "peer_fork_detected", "peer_suspension_lifted", "content_erased", "link_agreed", "link_revoked", "key_rotated", "peer_key_rotated", "administration_handed_over", "status_changed", "status_update_sent", "status_update_received", "reply_sent", "reply_received", "reply_recorded", "sealed_identity_sent", "sealed_identity_received", "history_discontinued")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLAINT_REGISTERED_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_SENT_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    LINK_ESTABLISHED_FIELD_NUMBER: _ClassVar[int]
    PEER_FORK_DETECTED_FIELD_NUMBER: _ClassVar[int]
    PEER_SUSPENSION_LIFTED_FIELD_NUMBER: _ClassVar[int]
    CONTENT_ERASED_FIELD_NUMBER: _ClassVar[int]
    LINK_AGREED_FIELD_NUMBER: _ClassVar[int]
    LINK_REVOKED_FIELD_NUMBER: _ClassVar[int]
    KEY_ROTATED_FIELD_NUMBER: _ClassVar[int]
    PEER_KEY_ROTATED_FIELD_NUMBER: _ClassVar[int]
    ADMINISTRATION_HANDED_OVER_FIELD_NUMBER: _ClassVar[int]
    STATUS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    STATUS_UPDATE_SENT_FIELD_NUMBER: _ClassVar[int]
    STATUS_UPDATE_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    REPLY_SENT_FIELD_NUMBER: _ClassVar[int]
    REPLY_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    REPLY_RECORDED_FIELD_NUMBER: _ClassVar[int]
    SEALED_IDENTITY_SENT_FIELD_NUMBER: _ClassVar[int]
    SEALED_IDENTITY_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    HISTORY_DISCONTINUED_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    recorded_at: _timestamp_pb2.Timestamp
    complaint_registered: ComplaintRegistered
    referral_sent: ReferralSent
    referral_received: ReferralReceived
    receipt_received: ReceiptReceived
    link_established: LinkEstablished
    peer_fork_detected: PeerForkDetected
    peer_suspension_lifted: PeerSuspensionLifted
    content_erased: ContentErased
    link_agreed: LinkAgreed
    link_revoked: LinkRevoked
    key_rotated: KeyRotated
    peer_key_rotated: PeerKeyRotated
    administration_handed_over: AdministrationHandedOver
    status_changed: StatusChanged
    status_update_sent: StatusUpdateSent
    status_update_received: StatusUpdateReceived
    reply_sent: ReplySent
    reply_received: ReplyReceived
    reply_recorded: ReplyRecorded
    sealed_identity_sent: SealedIdentitySent
    sealed_identity_received: SealedIdentityReceived
    history_discontinued: HistoryDiscontinued
    def __init__(self, node_id: _Optional[str] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complaint_registered: _Optional[_Union[ComplaintRegistered, _Mapping]] = ..., referral_sent: _Optional[_Union[ReferralSent, _Mapping]] = ..., referral_received: _Optional[_Union[ReferralReceived, _Mapping]] = ..., receipt_received: _Optional[_Union[ReceiptReceived, _Mapping]] = ..., link_established: _Optional[_Union[LinkEstablished, _Mapping]] = ..., peer_fork_detected: _Optional[_Union[PeerForkDetected, _Mapping]] = ..., peer_suspension_lifted: _Optional[_Union[PeerSuspensionLifted, _Mapping]] = ..., content_erased: _Optional[_Union[ContentErased, _Mapping]] = ..., link_agreed: _Optional[_Union[LinkAgreed, _Mapping]] = ..., link_revoked: _Optional[_Union[LinkRevoked, _Mapping]] = ..., key_rotated: _Optional[_Union[KeyRotated, _Mapping]] = ..., peer_key_rotated: _Optional[_Union[PeerKeyRotated, _Mapping]] = ..., administration_handed_over: _Optional[_Union[AdministrationHandedOver, _Mapping]] = ..., status_changed: _Optional[_Union[StatusChanged, _Mapping]] = ..., status_update_sent: _Optional[_Union[StatusUpdateSent, _Mapping]] = ..., status_update_received: _Optional[_Union[StatusUpdateReceived, _Mapping]] = ..., reply_sent: _Optional[_Union[ReplySent, _Mapping]] = ..., reply_received: _Optional[_Union[ReplyReceived, _Mapping]] = ..., reply_recorded: _Optional[_Union[ReplyRecorded, _Mapping]] = ..., sealed_identity_sent: _Optional[_Union[SealedIdentitySent, _Mapping]] = ..., sealed_identity_received: _Optional[_Union[SealedIdentityReceived, _Mapping]] = ..., history_discontinued: _Optional[_Union[HistoryDiscontinued, _Mapping]] = ...) -> None: ...

class ComplaintRegistered(_message.Message):
    __slots__ = ("complaint",)
    COMPLAINT_FIELD_NUMBER: _ClassVar[int]
    complaint: _complaint_pb2.ComplaintSummary
    def __init__(self, complaint: _Optional[_Union[_complaint_pb2.ComplaintSummary, _Mapping]] = ...) -> None: ...

class ReferralSent(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class ReferralReceived(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class ReceiptReceived(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class LinkEstablished(_message.Message):
    __slots__ = ("peer_id", "role", "peer_name", "peer_signing_key", "peer_tls_sha256")
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PEER_NAME_FIELD_NUMBER: _ClassVar[int]
    PEER_SIGNING_KEY_FIELD_NUMBER: _ClassVar[int]
    PEER_TLS_SHA256_FIELD_NUMBER: _ClassVar[int]
    peer_id: str
    role: PeerRole
    peer_name: str
    peer_signing_key: bytes
    peer_tls_sha256: bytes
    def __init__(self, peer_id: _Optional[str] = ..., role: _Optional[_Union[PeerRole, str]] = ..., peer_name: _Optional[str] = ..., peer_signing_key: _Optional[bytes] = ..., peer_tls_sha256: _Optional[bytes] = ...) -> None: ...

class PeerForkDetected(_message.Message):
    __slots__ = ("peer_id", "kind", "held_checkpoint", "presented_checkpoint", "proof_held_size", "consistency_proof", "envelope")
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    HELD_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    PRESENTED_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    PROOF_HELD_SIZE_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_PROOF_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    peer_id: str
    kind: ForkKind
    held_checkpoint: bytes
    presented_checkpoint: bytes
    proof_held_size: int
    consistency_proof: _containers.RepeatedScalarFieldContainer[bytes]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, peer_id: _Optional[str] = ..., kind: _Optional[_Union[ForkKind, str]] = ..., held_checkpoint: _Optional[bytes] = ..., presented_checkpoint: _Optional[bytes] = ..., proof_held_size: _Optional[int] = ..., consistency_proof: _Optional[_Iterable[bytes]] = ..., envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class PeerSuspensionLifted(_message.Message):
    __slots__ = ("peer_id", "fork_entry_index", "reason")
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    FORK_ENTRY_INDEX_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    peer_id: str
    fork_entry_index: int
    reason: str
    def __init__(self, peer_id: _Optional[str] = ..., fork_entry_index: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class ContentErased(_message.Message):
    __slots__ = ("tracking_id", "content_commitment", "reason")
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tracking_id: str
    content_commitment: bytes
    reason: str
    def __init__(self, tracking_id: _Optional[str] = ..., content_commitment: _Optional[bytes] = ..., reason: _Optional[str] = ...) -> None: ...

class LinkAgreed(_message.Message):
    __slots__ = ("agreement", "parent_chain")
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    PARENT_CHAIN_FIELD_NUMBER: _ClassVar[int]
    agreement: _trust_pb2.SignedLinkAgreement
    parent_chain: _trust_pb2.TrustChain
    def __init__(self, agreement: _Optional[_Union[_trust_pb2.SignedLinkAgreement, _Mapping]] = ..., parent_chain: _Optional[_Union[_trust_pb2.TrustChain, _Mapping]] = ...) -> None: ...

class LinkRevoked(_message.Message):
    __slots__ = ("revocation",)
    REVOCATION_FIELD_NUMBER: _ClassVar[int]
    revocation: _trust_pb2.SignedLinkRevocation
    def __init__(self, revocation: _Optional[_Union[_trust_pb2.SignedLinkRevocation, _Mapping]] = ...) -> None: ...

class KeyRotated(_message.Message):
    __slots__ = ("rotation",)
    ROTATION_FIELD_NUMBER: _ClassVar[int]
    rotation: _trust_pb2.SignedKeyRotation
    def __init__(self, rotation: _Optional[_Union[_trust_pb2.SignedKeyRotation, _Mapping]] = ...) -> None: ...

class HistoryDiscontinued(_message.Message):
    __slots__ = ("rotation",)
    ROTATION_FIELD_NUMBER: _ClassVar[int]
    rotation: _trust_pb2.SignedKeyRotation
    def __init__(self, rotation: _Optional[_Union[_trust_pb2.SignedKeyRotation, _Mapping]] = ...) -> None: ...

class PeerKeyRotated(_message.Message):
    __slots__ = ("rotation",)
    ROTATION_FIELD_NUMBER: _ClassVar[int]
    rotation: _trust_pb2.SignedKeyRotation
    def __init__(self, rotation: _Optional[_Union[_trust_pb2.SignedKeyRotation, _Mapping]] = ...) -> None: ...

class AdministrationHandedOver(_message.Message):
    __slots__ = ("handover",)
    HANDOVER_FIELD_NUMBER: _ClassVar[int]
    handover: _trust_pb2.AdministrationHandover
    def __init__(self, handover: _Optional[_Union[_trust_pb2.AdministrationHandover, _Mapping]] = ...) -> None: ...

class StatusChanged(_message.Message):
    __slots__ = ("tracking_id", "action", "from_status", "to_status", "actor", "role", "note_commitment", "reason_code")
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    FROM_STATUS_FIELD_NUMBER: _ClassVar[int]
    TO_STATUS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    NOTE_COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    tracking_id: str
    action: str
    from_status: str
    to_status: str
    actor: str
    role: str
    note_commitment: bytes
    reason_code: str
    def __init__(self, tracking_id: _Optional[str] = ..., action: _Optional[str] = ..., from_status: _Optional[str] = ..., to_status: _Optional[str] = ..., actor: _Optional[str] = ..., role: _Optional[str] = ..., note_commitment: _Optional[bytes] = ..., reason_code: _Optional[str] = ...) -> None: ...

class StatusUpdateSent(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class StatusUpdateReceived(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class ReplySent(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class ReplyReceived(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class ReplyRecorded(_message.Message):
    __slots__ = ("tracking_id", "text_commitment")
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    tracking_id: str
    text_commitment: bytes
    def __init__(self, tracking_id: _Optional[str] = ..., text_commitment: _Optional[bytes] = ...) -> None: ...

class SealedIdentitySent(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class SealedIdentityReceived(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...
