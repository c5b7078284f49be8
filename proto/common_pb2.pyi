from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ColumnSchema(_message.Message):
    __slots__ = ("columns", "feature_columns", "label_column")
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    LABEL_COLUMN_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedScalarFieldContainer[str]
    feature_columns: _containers.RepeatedScalarFieldContainer[str]
    label_column: str
    def __init__(self, columns: _Optional[_Iterable[str]] = ..., feature_columns: _Optional[_Iterable[str]] = ..., label_column: _Optional[str] = ...) -> None: ...

class DatasetRegistration(_message.Message):
    __slots__ = ("dataset_id", "provider_id", "rows", "cols", "frac_bits", "schema", "share_commitments", "nonce", "signature", "purpose", "column_exponents", "label_classes", "terms_json")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    FRAC_BITS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    SHARE_COMMITMENTS_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_EXPONENTS_FIELD_NUMBER: _ClassVar[int]
    LABEL_CLASSES_FIELD_NUMBER: _ClassVar[int]
    TERMS_JSON_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    provider_id: str
    rows: int
    cols: int
    frac_bits: int
    schema: ColumnSchema
    share_commitments: _containers.RepeatedScalarFieldContainer[bytes]
    nonce: str
    signature: bytes
    purpose: str
    column_exponents: _containers.RepeatedScalarFieldContainer[int]
    label_classes: int
    terms_json: str
    def __init__(self, dataset_id: _Optional[str] = ..., provider_id: _Optional[str] = ..., rows: _Optional[int] = ..., cols: _Optional[int] = ..., frac_bits: _Optional[int] = ..., schema: _Optional[_Union[ColumnSchema, _Mapping]] = ..., share_commitments: _Optional[_Iterable[bytes]] = ..., nonce: _Optional[str] = ..., signature: _Optional[bytes] = ..., purpose: _Optional[str] = ..., column_exponents: _Optional[_Iterable[int]] = ..., label_classes: _Optional[int] = ..., terms_json: _Optional[str] = ...) -> None: ...

class ProviderAuth(_message.Message):
    __slots__ = ("provider_id", "nonce", "signature")
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    nonce: str
    signature: bytes
    def __init__(self, provider_id: _Optional[str] = ..., nonce: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...
