import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from node._proto.lapor.v1 import complaint_pb2 as _complaint_pb2
from node._proto.lapor.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PeerRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PEER_ROLE_UNSPECIFIED: _ClassVar[PeerRole]
    PEER_ROLE_PARENT: _ClassVar[PeerRole]
    PEER_ROLE_CHILD: _ClassVar[PeerRole]
PEER_ROLE_UNSPECIFIED: PeerRole
PEER_ROLE_PARENT: PeerRole
PEER_ROLE_CHILD: PeerRole

class LedgerEntry(_message.Message):
    __slots__ = ("node_id", "recorded_at", "complaint_registered", "referral_sent", "referral_received", "receipt_received", "link_established")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLAINT_REGISTERED_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_SENT_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    LINK_ESTABLISHED_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    recorded_at: _timestamp_pb2.Timestamp
    complaint_registered: ComplaintRegistered
    referral_sent: ReferralSent
    referral_received: ReferralReceived
    receipt_received: ReceiptReceived
    link_established: LinkEstablished
    def __init__(self, node_id: _Optional[str] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complaint_registered: _Optional[_Union[ComplaintRegistered, _Mapping]] = ..., referral_sent: _Optional[_Union[ReferralSent, _Mapping]] = ..., referral_received: _Optional[_Union[ReferralReceived, _Mapping]] = ..., receipt_received: _Optional[_Union[ReceiptReceived, _Mapping]] = ..., link_established: _Optional[_Union[LinkEstablished, _Mapping]] = ...) -> None: ...

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
