import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReporterIdentity(_message.Message):
    __slots__ = ("name", "contact", "id_number")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    ID_NUMBER_FIELD_NUMBER: _ClassVar[int]
    name: str
    contact: str
    id_number: str
    def __init__(self, name: _Optional[str] = ..., contact: _Optional[str] = ..., id_number: _Optional[str] = ...) -> None: ...

class SealingKeyStatement(_message.Message):
    __slots__ = ("node_id", "sealing_key", "signing_key", "issued_at")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SEALING_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNING_KEY_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    sealing_key: bytes
    signing_key: bytes
    issued_at: _timestamp_pb2.Timestamp
    def __init__(self, node_id: _Optional[str] = ..., sealing_key: _Optional[bytes] = ..., signing_key: _Optional[bytes] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SignedSealingKey(_message.Message):
    __slots__ = ("statement", "signature")
    STATEMENT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    statement: bytes
    signature: bytes
    def __init__(self, statement: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class SealedIdentity(_message.Message):
    __slots__ = ("tracking_id", "recipient_node", "recipient_key", "ephemeral_key", "nonce", "ciphertext")
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_NODE_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_KEY_FIELD_NUMBER: _ClassVar[int]
    EPHEMERAL_KEY_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    tracking_id: str
    recipient_node: str
    recipient_key: bytes
    ephemeral_key: bytes
    nonce: bytes
    ciphertext: bytes
    def __init__(self, tracking_id: _Optional[str] = ..., recipient_node: _Optional[str] = ..., recipient_key: _Optional[bytes] = ..., ephemeral_key: _Optional[bytes] = ..., nonce: _Optional[bytes] = ..., ciphertext: _Optional[bytes] = ...) -> None: ...
