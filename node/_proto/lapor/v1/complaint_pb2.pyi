import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Classification(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLASSIFICATION_UNSPECIFIED: _ClassVar[Classification]
    CLASSIFICATION_PENGADUAN: _ClassVar[Classification]
    CLASSIFICATION_ASPIRASI: _ClassVar[Classification]
    CLASSIFICATION_PERMINTAAN_INFORMASI: _ClassVar[Classification]
    CLASSIFICATION_WHISTLEBLOWING: _ClassVar[Classification]

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_WEB: _ClassVar[Channel]
    CHANNEL_SMS_1708: _ClassVar[Channel]
    CHANNEL_TWITTER: _ClassVar[Channel]
    CHANNEL_MOBILE_APP: _ClassVar[Channel]
    CHANNEL_WALK_IN: _ClassVar[Channel]
    CHANNEL_API: _ClassVar[Channel]
CLASSIFICATION_UNSPECIFIED: Classification
CLASSIFICATION_PENGADUAN: Classification
CLASSIFICATION_ASPIRASI: Classification
CLASSIFICATION_PERMINTAAN_INFORMASI: Classification
CLASSIFICATION_WHISTLEBLOWING: Classification
CHANNEL_UNSPECIFIED: Channel
CHANNEL_WEB: Channel
CHANNEL_SMS_1708: Channel
CHANNEL_TWITTER: Channel
CHANNEL_MOBILE_APP: Channel
CHANNEL_WALK_IN: Channel
CHANNEL_API: Channel

class Reporter(_message.Message):
    __slots__ = ("name", "contact", "id_number")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    ID_NUMBER_FIELD_NUMBER: _ClassVar[int]
    name: str
    contact: str
    id_number: str
    def __init__(self, name: _Optional[str] = ..., contact: _Optional[str] = ..., id_number: _Optional[str] = ...) -> None: ...

class ComplaintContent(_message.Message):
    __slots__ = ("title", "description", "reporter", "location", "attachments")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REPORTER_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    title: str
    description: str
    reporter: Reporter
    location: str
    attachments: _containers.RepeatedCompositeFieldContainer[AttachmentRef]
    def __init__(self, title: _Optional[str] = ..., description: _Optional[str] = ..., reporter: _Optional[_Union[Reporter, _Mapping]] = ..., location: _Optional[str] = ..., attachments: _Optional[_Iterable[_Union[AttachmentRef, _Mapping]]] = ...) -> None: ...

class AttachmentRef(_message.Message):
    __slots__ = ("name", "media_type", "size", "sha256")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    name: str
    media_type: str
    size: int
    sha256: bytes
    def __init__(self, name: _Optional[str] = ..., media_type: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[bytes] = ...) -> None: ...

class ComplaintSummary(_message.Message):
    __slots__ = ("tracking_id", "origin_node", "classification", "category", "region_code", "channel", "anonymous", "confidential", "needs_inspection", "submitted_at", "content_commitment")
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_NODE_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    REGION_CODE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ANONYMOUS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENTIAL_FIELD_NUMBER: _ClassVar[int]
    NEEDS_INSPECTION_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    tracking_id: str
    origin_node: str
    classification: Classification
    category: str
    region_code: str
    channel: Channel
    anonymous: bool
    confidential: bool
    needs_inspection: bool
    submitted_at: _timestamp_pb2.Timestamp
    content_commitment: bytes
    def __init__(self, tracking_id: _Optional[str] = ..., origin_node: _Optional[str] = ..., classification: _Optional[_Union[Classification, str]] = ..., category: _Optional[str] = ..., region_code: _Optional[str] = ..., channel: _Optional[_Union[Channel, str]] = ..., anonymous: _Optional[bool] = ..., confidential: _Optional[bool] = ..., needs_inspection: _Optional[bool] = ..., submitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., content_commitment: _Optional[bytes] = ...) -> None: ...
