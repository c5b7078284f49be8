from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DealerKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEALER_KIND_UNSPECIFIED: _ClassVar[DealerKind]
    ADDITIVE: _ClassVar[DealerKind]
    SQUARE: _ClassVar[DealerKind]
    BINARY: _ClassVar[DealerKind]
    WRAPS: _ClassVar[DealerKind]
    B2A: _ClassVar[DealerKind]
DEALER_KIND_UNSPECIFIED: DealerKind
ADDITIVE: DealerKind
SQUARE: DealerKind
BINARY: DealerKind
WRAPS: DealerKind
B2A: DealerKind

class PlaneHello(_message.Message):
    __slots__ = ("job_id", "from_rank", "to_rank", "world_size")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_RANK_FIELD_NUMBER: _ClassVar[int]
    TO_RANK_FIELD_NUMBER: _ClassVar[int]
    WORLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    from_rank: int
    to_rank: int
    world_size: int
    def __init__(self, job_id: _Optional[str] = ..., from_rank: _Optional[int] = ..., to_rank: _Optional[int] = ..., world_size: _Optional[int] = ...) -> None: ...

class PlaneTensor(_message.Message):
    __slots__ = ("dtype", "shape", "data", "more")
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    data: bytes
    more: bool
    def __init__(self, dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., data: _Optional[bytes] = ..., more: _Optional[bool] = ...) -> None: ...

class DealerItem(_message.Message):
    __slots__ = ("kind", "size0", "size1", "op")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SIZE0_FIELD_NUMBER: _ClassVar[int]
    SIZE1_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    kind: DealerKind
    size0: _containers.RepeatedScalarFieldContainer[int]
    size1: _containers.RepeatedScalarFieldContainer[int]
    op: str
    def __init__(self, kind: _Optional[_Union[DealerKind, str]] = ..., size0: _Optional[_Iterable[int]] = ..., size1: _Optional[_Iterable[int]] = ..., op: _Optional[str] = ...) -> None: ...

class DealerRequest(_message.Message):
    __slots__ = ("items", "batch")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[DealerItem]
    batch: bool
    def __init__(self, items: _Optional[_Iterable[_Union[DealerItem, _Mapping]]] = ..., batch: _Optional[bool] = ...) -> None: ...

class PlaneControl(_message.Message):
    __slots__ = ("kind", "values")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[PlaneControl.Kind]
        BARRIER: _ClassVar[PlaneControl.Kind]
        TERMINATE: _ClassVar[PlaneControl.Kind]
        SIZE: _ClassVar[PlaneControl.Kind]
        SEED: _ClassVar[PlaneControl.Kind]
    KIND_UNSPECIFIED: PlaneControl.Kind
    BARRIER: PlaneControl.Kind
    TERMINATE: PlaneControl.Kind
    SIZE: PlaneControl.Kind
    SEED: PlaneControl.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    kind: PlaneControl.Kind
    values: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, kind: _Optional[_Union[PlaneControl.Kind, str]] = ..., values: _Optional[_Iterable[int]] = ...) -> None: ...

class PlaneFrame(_message.Message):
    __slots__ = ("seq", "hello", "tensor", "dealer_request", "control")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    HELLO_FIELD_NUMBER: _ClassVar[int]
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    DEALER_REQUEST_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    seq: int
    hello: PlaneHello
    tensor: PlaneTensor
    dealer_request: DealerRequest
    control: PlaneControl
    def __init__(self, seq: _Optional[int] = ..., hello: _Optional[_Union[PlaneHello, _Mapping]] = ..., tensor: _Optional[_Union[PlaneTensor, _Mapping]] = ..., dealer_request: _Optional[_Union[DealerRequest, _Mapping]] = ..., control: _Optional[_Union[PlaneControl, _Mapping]] = ...) -> None: ...
