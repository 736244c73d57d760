import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from node._proto.lapor.v1 import complaint_pb2 as _complaint_pb2
from node._proto.lapor.v1 import privacy_pb2 as _privacy_pb2
from node._proto.lapor.v1 import trust_pb2 as _trust_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SignedEnvelope(_message.Message):
    __slots__ = ("body", "signer", "key_id", "signature")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNER_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signer: str
    key_id: bytes
    signature: bytes
    def __init__(self, body: _Optional[bytes] = ..., signer: _Optional[str] = ..., key_id: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class Envelope(_message.Message):
    __slots__ = ("message_id", "sender", "recipient", "sequence", "sent_at", "checkpoint", "referral", "receipt", "key_rotation", "status_update", "reporter_reply", "sealed_identity")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    KEY_ROTATION_FIELD_NUMBER: _ClassVar[int]
    STATUS_UPDATE_FIELD_NUMBER: _ClassVar[int]
    REPORTER_REPLY_FIELD_NUMBER: _ClassVar[int]
    SEALED_IDENTITY_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    sender: str
    recipient: str
    sequence: int
    sent_at: _timestamp_pb2.Timestamp
    checkpoint: bytes
    referral: Referral
    receipt: Receipt
    key_rotation: _trust_pb2.SignedKeyRotation
    status_update: StatusUpdate
    reporter_reply: ReporterReply
    sealed_identity: _privacy_pb2.SealedIdentity
    def __init__(self, message_id: _Optional[str] = ..., sender: _Optional[str] = ..., recipient: _Optional[str] = ..., sequence: _Optional[int] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., checkpoint: _Optional[bytes] = ..., referral: _Optional[_Union[Referral, _Mapping]] = ..., receipt: _Optional[_Union[Receipt, _Mapping]] = ..., key_rotation: _Optional[_Union[_trust_pb2.SignedKeyRotation, _Mapping]] = ..., status_update: _Optional[_Union[StatusUpdate, _Mapping]] = ..., reporter_reply: _Optional[_Union[ReporterReply, _Mapping]] = ..., sealed_identity: _Optional[_Union[_privacy_pb2.SealedIdentity, _Mapping]] = ...) -> None: ...

class Referral(_message.Message):
    __slots__ = ("complaint",)
    COMPLAINT_FIELD_NUMBER: _ClassVar[int]
    complaint: _complaint_pb2.ComplaintSummary
    def __init__(self, complaint: _Optional[_Union[_complaint_pb2.ComplaintSummary, _Mapping]] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("referral_message_id", "referral_body_sha256", "tracking_id", "entry_index")
    REFERRAL_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_BODY_SHA256_FIELD_NUMBER: _ClassVar[int]
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_INDEX_FIELD_NUMBER: _ClassVar[int]
    referral_message_id: str
    referral_body_sha256: bytes
    tracking_id: str
    entry_index: int
    def __init__(self, referral_message_id: _Optional[str] = ..., referral_body_sha256: _Optional[bytes] = ..., tracking_id: _Optional[str] = ..., entry_index: _Optional[int] = ...) -> None: ...

class StatusUpdate(_message.Message):
    __slots__ = ("tracking_id", "action", "status", "holder", "actor", "at", "note_commitment", "reason_code", "holder_sealing_key")
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    NOTE_COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    HOLDER_SEALING_KEY_FIELD_NUMBER: _ClassVar[int]
    tracking_id: str
    action: str
    status: str
    holder: str
    actor: str
    at: _timestamp_pb2.Timestamp
    note_commitment: bytes
    reason_code: str
    holder_sealing_key: _privacy_pb2.SignedSealingKey
    def __init__(self, tracking_id: _Optional[str] = ..., action: _Optional[str] = ..., status: _Optional[str] = ..., holder: _Optional[str] = ..., actor: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., note_commitment: _Optional[bytes] = ..., reason_code: _Optional[str] = ..., holder_sealing_key: _Optional[_Union[_privacy_pb2.SignedSealingKey, _Mapping]] = ...) -> None: ...

class ReporterReply(_message.Message):
    __slots__ = ("tracking_id", "at", "text_commitment")
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    TEXT_COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    tracking_id: str
    at: _timestamp_pb2.Timestamp
    text_commitment: bytes
    def __init__(self, tracking_id: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., text_commitment: _Optional[bytes] = ...) -> None: ...
