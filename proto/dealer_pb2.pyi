from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class DealerSessionRequest(_message.Message):
    __slots__ = ("job_id", "world_size", "master_addr", "master_port", "deadline_s", "plane", "plane_addresses", "plane_members")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    WORLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    MASTER_ADDR_FIELD_NUMBER: _ClassVar[int]
    MASTER_PORT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_S_FIELD_NUMBER: _ClassVar[int]
    PLANE_FIELD_NUMBER: _ClassVar[int]
    PLANE_ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    PLANE_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    world_size: int
    master_addr: str
    master_port: int
    deadline_s: float
    plane: str
    plane_addresses: _containers.RepeatedScalarFieldContainer[str]
    plane_members: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_id: _Optional[str] = ..., world_size: _Optional[int] = ..., master_addr: _Optional[str] = ..., master_port: _Optional[int] = ..., deadline_s: _Optional[float] = ..., plane: _Optional[str] = ..., plane_addresses: _Optional[_Iterable[str]] = ..., plane_members: _Optional[_Iterable[str]] = ...) -> None: ...

class DealerSessionQuery(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DealerSessionStatus(_message.Message):
    __slots__ = ("job_id", "state", "message")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: str
    message: str
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...
