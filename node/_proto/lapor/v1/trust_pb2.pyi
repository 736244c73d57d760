import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeKeys(_message.Message):
    __slots__ = ("node_id", "name", "signing_key", "tls_cert_sha256")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIGNING_KEY_FIELD_NUMBER: _ClassVar[int]
    TLS_CERT_SHA256_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    name: str
    signing_key: bytes
    tls_cert_sha256: bytes
    def __init__(self, node_id: _Optional[str] = ..., name: _Optional[str] = ..., signing_key: _Optional[bytes] = ..., tls_cert_sha256: _Optional[bytes] = ...) -> None: ...

class LinkAgreement(_message.Message):
    __slots__ = ("parent", "child", "agreed_at", "invite_sha256")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    CHILD_FIELD_NUMBER: _ClassVar[int]
    AGREED_AT_FIELD_NUMBER: _ClassVar[int]
    INVITE_SHA256_FIELD_NUMBER: _ClassVar[int]
    parent: NodeKeys
    child: NodeKeys
    agreed_at: _timestamp_pb2.Timestamp
    invite_sha256: bytes
    def __init__(self, parent: _Optional[_Union[NodeKeys, _Mapping]] = ..., child: _Optional[_Union[NodeKeys, _Mapping]] = ..., agreed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., invite_sha256: _Optional[bytes] = ...) -> None: ...

class SignedLinkAgreement(_message.Message):
    __slots__ = ("agreement", "parent_signature", "child_signature")
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    PARENT_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    CHILD_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    agreement: bytes
    parent_signature: bytes
    child_signature: bytes
    def __init__(self, agreement: _Optional[bytes] = ..., parent_signature: _Optional[bytes] = ..., child_signature: _Optional[bytes] = ...) -> None: ...

class KeyRotation(_message.Message):
    __slots__ = ("node_id", "old_signing_key", "new_signing_key", "new_tls_cert_sha256", "new_tls_cert_pem", "rotated_at", "old_tls_valid_until", "discontinuity")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    OLD_SIGNING_KEY_FIELD_NUMBER: _ClassVar[int]
    NEW_SIGNING_KEY_FIELD_NUMBER: _ClassVar[int]
    NEW_TLS_CERT_SHA256_FIELD_NUMBER: _ClassVar[int]
    NEW_TLS_CERT_PEM_FIELD_NUMBER: _ClassVar[int]
    ROTATED_AT_FIELD_NUMBER: _ClassVar[int]
    OLD_TLS_VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    DISCONTINUITY_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    old_signing_key: bytes
    new_signing_key: bytes
    new_tls_cert_sha256: bytes
    new_tls_cert_pem: str
    rotated_at: _timestamp_pb2.Timestamp
    old_tls_valid_until: _timestamp_pb2.Timestamp
    discontinuity: Discontinuity
    def __init__(self, node_id: _Optional[str] = ..., old_signing_key: _Optional[bytes] = ..., new_signing_key: _Optional[bytes] = ..., new_tls_cert_sha256: _Optional[bytes] = ..., new_tls_cert_pem: _Optional[str] = ..., rotated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., old_tls_valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., discontinuity: _Optional[_Union[Discontinuity, _Mapping]] = ...) -> None: ...

class Discontinuity(_message.Message):
    __slots__ = ("fenced_checkpoint", "fenced_size", "fenced_root", "restart_size", "restart_root", "reason", "declared_at")
    FENCED_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    FENCED_SIZE_FIELD_NUMBER: _ClassVar[int]
    FENCED_ROOT_FIELD_NUMBER: _ClassVar[int]
    RESTART_SIZE_FIELD_NUMBER: _ClassVar[int]
    RESTART_ROOT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DECLARED_AT_FIELD_NUMBER: _ClassVar[int]
    fenced_checkpoint: bytes
    fenced_size: int
    fenced_root: bytes
    restart_size: int
    restart_root: bytes
    reason: str
    declared_at: _timestamp_pb2.Timestamp
    def __init__(self, fenced_checkpoint: _Optional[bytes] = ..., fenced_size: _Optional[int] = ..., fenced_root: _Optional[bytes] = ..., restart_size: _Optional[int] = ..., restart_root: _Optional[bytes] = ..., reason: _Optional[str] = ..., declared_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SignedKeyRotation(_message.Message):
    __slots__ = ("rotation", "old_signature", "new_signature")
    ROTATION_FIELD_NUMBER: _ClassVar[int]
    OLD_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    NEW_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    rotation: bytes
    old_signature: bytes
    new_signature: bytes
    def __init__(self, rotation: _Optional[bytes] = ..., old_signature: _Optional[bytes] = ..., new_signature: _Optional[bytes] = ...) -> None: ...

class LinkRevocation(_message.Message):
    __slots__ = ("parent_id", "child_id", "child_signing_key", "revoked_at", "reason", "revoked_by", "parent_signing_key")
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHILD_ID_FIELD_NUMBER: _ClassVar[int]
    CHILD_SIGNING_KEY_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REVOKED_BY_FIELD_NUMBER: _ClassVar[int]
    PARENT_SIGNING_KEY_FIELD_NUMBER: _ClassVar[int]
    parent_id: str
    child_id: str
    child_signing_key: bytes
    revoked_at: _timestamp_pb2.Timestamp
    reason: str
    revoked_by: str
    parent_signing_key: bytes
    def __init__(self, parent_id: _Optional[str] = ..., child_id: _Optional[str] = ..., child_signing_key: _Optional[bytes] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., revoked_by: _Optional[str] = ..., parent_signing_key: _Optional[bytes] = ...) -> None: ...

class SignedLinkRevocation(_message.Message):
    __slots__ = ("revocation", "signature")
    REVOCATION_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    revocation: bytes
    signature: bytes
    def __init__(self, revocation: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class TrustStep(_message.Message):
    __slots__ = ("agreement", "rotation", "revocation")
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    ROTATION_FIELD_NUMBER: _ClassVar[int]
    REVOCATION_FIELD_NUMBER: _ClassVar[int]
    agreement: SignedLinkAgreement
    rotation: SignedKeyRotation
    revocation: SignedLinkRevocation
    def __init__(self, agreement: _Optional[_Union[SignedLinkAgreement, _Mapping]] = ..., rotation: _Optional[_Union[SignedKeyRotation, _Mapping]] = ..., revocation: _Optional[_Union[SignedLinkRevocation, _Mapping]] = ...) -> None: ...

class TrustChain(_message.Message):
    __slots__ = ("steps",)
    STEPS_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[TrustStep]
    def __init__(self, steps: _Optional[_Iterable[_Union[TrustStep, _Mapping]]] = ...) -> None: ...

class AdministrationHandover(_message.Message):
    __slots__ = ("node_id", "unit", "operator", "credential_sha256", "previous_unit", "previous_operator", "handed_over_at")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_SHA256_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_UNIT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_OPERATOR_FIELD_NUMBER: _ClassVar[int]
    HANDED_OVER_AT_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    unit: str
    operator: str
    credential_sha256: bytes
    previous_unit: str
    previous_operator: str
    handed_over_at: _timestamp_pb2.Timestamp
    def __init__(self, node_id: _Optional[str] = ..., unit: _Optional[str] = ..., operator: _Optional[str] = ..., credential_sha256: _Optional[bytes] = ..., previous_unit: _Optional[str] = ..., previous_operator: _Optional[str] = ..., handed_over_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
