import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from node._proto.lapor.v1 import complaint_pb2 as _complaint_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitRequest(_message.Message):
    __slots__ = ("submission", "chunk")
    SUBMISSION_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    submission: Submission
    chunk: AttachmentChunk
    def __init__(self, submission: _Optional[_Union[Submission, _Mapping]] = ..., chunk: _Optional[_Union[AttachmentChunk, _Mapping]] = ...) -> None: ...

class Submission(_message.Message):
    __slots__ = ("idempotency_key", "channel", "classification", "category", "region_code", "content", "anonymous", "confidential", "needs_inspection", "attachments")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    REGION_CODE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    ANONYMOUS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENTIAL_FIELD_NUMBER: _ClassVar[int]
    NEEDS_INSPECTION_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    channel: _complaint_pb2.Channel
    classification: _complaint_pb2.Classification
    category: str
    region_code: str
    content: _complaint_pb2.ComplaintContent
    anonymous: bool
    confidential: bool
    needs_inspection: bool
    attachments: _containers.RepeatedCompositeFieldContainer[_complaint_pb2.AttachmentRef]
    def __init__(self, idempotency_key: _Optional[str] = ..., channel: _Optional[_Union[_complaint_pb2.Channel, str]] = ..., classification: _Optional[_Union[_complaint_pb2.Classification, str]] = ..., category: _Optional[str] = ..., region_code: _Optional[str] = ..., content: _Optional[_Union[_complaint_pb2.ComplaintContent, _Mapping]] = ..., anonymous: _Optional[bool] = ..., confidential: _Optional[bool] = ..., needs_inspection: _Optional[bool] = ..., attachments: _Optional[_Iterable[_Union[_complaint_pb2.AttachmentRef, _Mapping]]] = ...) -> None: ...

class AttachmentChunk(_message.Message):
    __slots__ = ("index", "data")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    index: int
    data: bytes
    def __init__(self, index: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("tracking_id", "duplicate", "submitted_at")
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    tracking_id: str
    duplicate: bool
    submitted_at: _timestamp_pb2.Timestamp
    def __init__(self, tracking_id: _Optional[str] = ..., duplicate: _Optional[bool] = ..., submitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ("tracking_id",)
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    tracking_id: str
    def __init__(self, tracking_id: _Optional[str] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("tracking_id", "status", "updated_at")
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    tracking_id: str
    status: str
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, tracking_id: _Optional[str] = ..., status: _Optional[str] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
