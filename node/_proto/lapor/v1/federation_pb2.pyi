from node._proto.lapor.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExchangeRequest(_message.Message):
    __slots__ = ("frame",)
    FRAME_FIELD_NUMBER: _ClassVar[int]
    frame: Frame
    def __init__(self, frame: _Optional[_Union[Frame, _Mapping]] = ...) -> None: ...

class ExchangeResponse(_message.Message):
    __slots__ = ("frame",)
    FRAME_FIELD_NUMBER: _ClassVar[int]
    frame: Frame
    def __init__(self, frame: _Optional[_Union[Frame, _Mapping]] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("hello", "delivery", "ack", "rejection", "deliveries", "witness_request", "witness_response")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    REJECTION_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    WITNESS_REQUEST_FIELD_NUMBER: _ClassVar[int]
    WITNESS_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    delivery: Delivery
    ack: Ack
    rejection: Rejection
    deliveries: Deliveries
    witness_request: WitnessRequest
    witness_response: WitnessResponse
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., delivery: _Optional[_Union[Delivery, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., rejection: _Optional[_Union[Rejection, _Mapping]] = ..., deliveries: _Optional[_Union[Deliveries, _Mapping]] = ..., witness_request: _Optional[_Union[WitnessRequest, _Mapping]] = ..., witness_response: _Optional[_Union[WitnessResponse, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("protocol_version", "last_received_sequence", "held_checkpoint_size", "held_checkpoint_root", "max_frame_deliveries", "max_frame_bytes", "checkpoint", "held_checkpoint")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    LAST_RECEIVED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HELD_CHECKPOINT_SIZE_FIELD_NUMBER: _ClassVar[int]
    HELD_CHECKPOINT_ROOT_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAME_DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAME_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    HELD_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    last_received_sequence: int
    held_checkpoint_size: int
    held_checkpoint_root: bytes
    max_frame_deliveries: int
    max_frame_bytes: int
    checkpoint: bytes
    held_checkpoint: bytes
    def __init__(self, protocol_version: _Optional[int] = ..., last_received_sequence: _Optional[int] = ..., held_checkpoint_size: _Optional[int] = ..., held_checkpoint_root: _Optional[bytes] = ..., max_frame_deliveries: _Optional[int] = ..., max_frame_bytes: _Optional[int] = ..., checkpoint: _Optional[bytes] = ..., held_checkpoint: _Optional[bytes] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("envelope", "content", "content_salt", "proof_held_size", "consistency_proof")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SALT_FIELD_NUMBER: _ClassVar[int]
    PROOF_HELD_SIZE_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_PROOF_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    content: bytes
    content_salt: bytes
    proof_held_size: int
    consistency_proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ..., content: _Optional[bytes] = ..., content_salt: _Optional[bytes] = ..., proof_held_size: _Optional[int] = ..., consistency_proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class Deliveries(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Delivery]
    def __init__(self, items: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("sequence",)
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    def __init__(self, sequence: _Optional[int] = ...) -> None: ...

class Rejection(_message.Message):
    __slots__ = ("sequence", "code", "message")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    code: int
    message: str
    def __init__(self, sequence: _Optional[int] = ..., code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class WitnessRequest(_message.Message):
    __slots__ = ("add_checkpoint_body",)
    ADD_CHECKPOINT_BODY_FIELD_NUMBER: _ClassVar[int]
    add_checkpoint_body: bytes
    def __init__(self, add_checkpoint_body: _Optional[bytes] = ...) -> None: ...

class WitnessResponse(_message.Message):
    __slots__ = ("status", "content_type", "body")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    status: int
    content_type: str
    body: bytes
    def __init__(self, status: _Optional[int] = ..., content_type: _Optional[str] = ..., body: _Optional[bytes] = ...) -> None: ...
