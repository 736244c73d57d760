import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from node._proto.lapor.v1 import trust_pb2 as _trust_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JoinStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOIN_STATUS_UNSPECIFIED: _ClassVar[JoinStatus]
    JOIN_STATUS_PENDING: _ClassVar[JoinStatus]
    JOIN_STATUS_REJECTED: _ClassVar[JoinStatus]
    JOIN_STATUS_ACCEPTED: _ClassVar[JoinStatus]
JOIN_STATUS_UNSPECIFIED: JoinStatus
JOIN_STATUS_PENDING: JoinStatus
JOIN_STATUS_REJECTED: JoinStatus
JOIN_STATUS_ACCEPTED: JoinStatus

class JoinTranscript(_message.Message):
    __slots__ = ("invite_id", "secret_sha256", "parent_id", "parent_tls_cert_sha256", "child", "requested_at")
    INVITE_ID_FIELD_NUMBER: _ClassVar[int]
    SECRET_SHA256_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_TLS_CERT_SHA256_FIELD_NUMBER: _ClassVar[int]
    CHILD_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_AT_FIELD_NUMBER: _ClassVar[int]
    invite_id: str
    secret_sha256: bytes
    parent_id: str
    parent_tls_cert_sha256: bytes
    child: _trust_pb2.NodeKeys
    requested_at: _timestamp_pb2.Timestamp
    def __init__(self, invite_id: _Optional[str] = ..., secret_sha256: _Optional[bytes] = ..., parent_id: _Optional[str] = ..., parent_tls_cert_sha256: _Optional[bytes] = ..., child: _Optional[_Union[_trust_pb2.NodeKeys, _Mapping]] = ..., requested_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class JoinRequest(_message.Message):
    __slots__ = ("transcript", "signing_signature", "tls_signature", "child_tls_cert_pem", "secret")
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    SIGNING_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    TLS_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    CHILD_TLS_CERT_PEM_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    transcript: bytes
    signing_signature: bytes
    tls_signature: bytes
    child_tls_cert_pem: str
    secret: bytes
    def __init__(self, transcript: _Optional[bytes] = ..., signing_signature: _Optional[bytes] = ..., tls_signature: _Optional[bytes] = ..., child_tls_cert_pem: _Optional[str] = ..., secret: _Optional[bytes] = ...) -> None: ...

class JoinResponse(_message.Message):
    __slots__ = ("status", "message", "parent_name", "parent_signing_key", "parent_tls_cert_pem", "agreement", "parent_signature", "parent_chain", "confirmed")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PARENT_NAME_FIELD_NUMBER: _ClassVar[int]
    PARENT_SIGNING_KEY_FIELD_NUMBER: _ClassVar[int]
    PARENT_TLS_CERT_PEM_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    PARENT_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PARENT_CHAIN_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    status: JoinStatus
    message: str
    parent_name: str
    parent_signing_key: bytes
    parent_tls_cert_pem: str
    agreement: bytes
    parent_signature: bytes
    parent_chain: _trust_pb2.TrustChain
    confirmed: bool
    def __init__(self, status: _Optional[_Union[JoinStatus, str]] = ..., message: _Optional[str] = ..., parent_name: _Optional[str] = ..., parent_signing_key: _Optional[bytes] = ..., parent_tls_cert_pem: _Optional[str] = ..., agreement: _Optional[bytes] = ..., parent_signature: _Optional[bytes] = ..., parent_chain: _Optional[_Union[_trust_pb2.TrustChain, _Mapping]] = ..., confirmed: _Optional[bool] = ...) -> None: ...

class ConfirmRequest(_message.Message):
    __slots__ = ("invite_id", "secret", "agreement", "child_signature")
    INVITE_ID_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    CHILD_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    invite_id: str
    secret: bytes
    agreement: bytes
    child_signature: bytes
    def __init__(self, invite_id: _Optional[str] = ..., secret: _Optional[bytes] = ..., agreement: _Optional[bytes] = ..., child_signature: _Optional[bytes] = ...) -> None: ...

class ConfirmResponse(_message.Message):
    __slots__ = ("ledger_index", "recorded_at")
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    ledger_index: int
    recorded_at: _timestamp_pb2.Timestamp
    def __init__(self, ledger_index: _Optional[int] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetKeyRotationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetKeyRotationsResponse(_message.Message):
    __slots__ = ("node_id", "rotations")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ROTATIONS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    rotations: _containers.RepeatedCompositeFieldContainer[_trust_pb2.SignedKeyRotation]
    def __init__(self, node_id: _Optional[str] = ..., rotations: _Optional[_Iterable[_Union[_trust_pb2.SignedKeyRotation, _Mapping]]] = ...) -> None: ...
