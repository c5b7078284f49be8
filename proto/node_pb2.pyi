from proto import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ShareChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: ShareHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[ShareHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class ShareHeader(_message.Message):
    __slots__ = ("dataset_id", "node_index", "rows", "cols", "frac_bits")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_INDEX_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    FRAC_BITS_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    node_index: int
    rows: int
    cols: int
    frac_bits: int
    def __init__(self, dataset_id: _Optional[str] = ..., node_index: _Optional[int] = ..., rows: _Optional[int] = ..., cols: _Optional[int] = ..., frac_bits: _Optional[int] = ...) -> None: ...

class UploadReceipt(_message.Message):
    __slots__ = ("dataset_id", "node_index", "bytes_received", "commitment", "node_signature")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_INDEX_FIELD_NUMBER: _ClassVar[int]
    BYTES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    NODE_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    node_index: int
    bytes_received: int
    commitment: bytes
    node_signature: bytes
    def __init__(self, dataset_id: _Optional[str] = ..., node_index: _Optional[int] = ..., bytes_received: _Optional[int] = ..., commitment: _Optional[bytes] = ..., node_signature: _Optional[bytes] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StoredDataset(_message.Message):
    __slots__ = ("dataset_id", "provider_id", "rows", "cols", "frac_bits", "schema", "commitment", "size_bytes", "stored_at")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    FRAC_BITS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    STORED_AT_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    provider_id: str
    rows: int
    cols: int
    frac_bits: int
    schema: _common_pb2.ColumnSchema
    commitment: bytes
    size_bytes: int
    stored_at: str
    def __init__(self, dataset_id: _Optional[str] = ..., provider_id: _Optional[str] = ..., rows: _Optional[int] = ..., cols: _Optional[int] = ..., frac_bits: _Optional[int] = ..., schema: _Optional[_Union[_common_pb2.ColumnSchema, _Mapping]] = ..., commitment: _Optional[bytes] = ..., size_bytes: _Optional[int] = ..., stored_at: _Optional[str] = ...) -> None: ...

class ListDatasetsReply(_message.Message):
    __slots__ = ("datasets",)
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[StoredDataset]
    def __init__(self, datasets: _Optional[_Iterable[_Union[StoredDataset, _Mapping]]] = ...) -> None: ...

class DescribeDatasetRequest(_message.Message):
    __slots__ = ("dataset_id",)
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("job_id", "round_id", "world_size", "rank", "master_addr", "master_port", "dealer_addr", "dataset_ids", "validation_dataset_id", "model_spec_json", "job_digest", "deadline_s", "plane", "plane_addresses", "plane_members", "tournament_json", "kind", "beacon")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    WORLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    MASTER_ADDR_FIELD_NUMBER: _ClassVar[int]
    MASTER_PORT_FIELD_NUMBER: _ClassVar[int]
    DEALER_ADDR_FIELD_NUMBER: _ClassVar[int]
    DATASET_IDS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    JOB_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_S_FIELD_NUMBER: _ClassVar[int]
    PLANE_FIELD_NUMBER: _ClassVar[int]
    PLANE_ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    PLANE_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    TOURNAMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BEACON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    round_id: str
    world_size: int
    rank: int
    master_addr: str
    master_port: int
    dealer_addr: str
    dataset_ids: _containers.RepeatedScalarFieldContainer[str]
    validation_dataset_id: str
    model_spec_json: str
    job_digest: bytes
    deadline_s: float
    plane: str
    plane_addresses: _containers.RepeatedScalarFieldContainer[str]
    plane_members: _containers.RepeatedScalarFieldContainer[str]
    tournament_json: str
    kind: str
    beacon: bytes
    def __init__(self, job_id: _Optional[str] = ..., round_id: _Optional[str] = ..., world_size: _Optional[int] = ..., rank: _Optional[int] = ..., master_addr: _Optional[str] = ..., master_port: _Optional[int] = ..., dealer_addr: _Optional[str] = ..., dataset_ids: _Optional[_Iterable[str]] = ..., validation_dataset_id: _Optional[str] = ..., model_spec_json: _Optional[str] = ..., job_digest: _Optional[bytes] = ..., deadline_s: _Optional[float] = ..., plane: _Optional[str] = ..., plane_addresses: _Optional[_Iterable[str]] = ..., plane_members: _Optional[_Iterable[str]] = ..., tournament_json: _Optional[str] = ..., kind: _Optional[str] = ..., beacon: _Optional[bytes] = ...) -> None: ...

class JobAccepted(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class JobStatusRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class JobResult(_message.Message):
    __slots__ = ("metrics", "attestation", "attestation_payload_json", "stats_json")
    METRICS_FIELD_NUMBER: _ClassVar[int]
    ATTESTATION_FIELD_NUMBER: _ClassVar[int]
    ATTESTATION_PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    STATS_JSON_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.RepeatedScalarFieldContainer[float]
    attestation: bytes
    attestation_payload_json: str
    stats_json: str
    def __init__(self, metrics: _Optional[_Iterable[float]] = ..., attestation: _Optional[bytes] = ..., attestation_payload_json: _Optional[str] = ..., stats_json: _Optional[str] = ...) -> None: ...

class JobStatusReply(_message.Message):
    __slots__ = ("job_id", "state", "message", "result", "progress")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: str
    message: str
    result: JobResult
    progress: float
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[str] = ..., message: _Optional[str] = ..., result: _Optional[_Union[JobResult, _Mapping]] = ..., progress: _Optional[float] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelJobReply(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: str
    def __init__(self, state: _Optional[str] = ...) -> None: ...

class FetchModelShareRequest(_message.Message):
    __slots__ = ("round_id", "sponsor_id", "node_index", "nonce", "issued_at", "signature", "model_id")
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    SPONSOR_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_INDEX_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    round_id: str
    sponsor_id: str
    node_index: int
    nonce: str
    issued_at: int
    signature: bytes
    model_id: str
    def __init__(self, round_id: _Optional[str] = ..., sponsor_id: _Optional[str] = ..., node_index: _Optional[int] = ..., nonce: _Optional[str] = ..., issued_at: _Optional[int] = ..., signature: _Optional[bytes] = ..., model_id: _Optional[str] = ...) -> None: ...

class ModelShareChunk(_message.Message):
    __slots__ = ("receipt", "data")
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    receipt: ModelShareReceipt
    data: bytes
    def __init__(self, receipt: _Optional[_Union[ModelShareReceipt, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class ModelShareReceipt(_message.Message):
    __slots__ = ("receipt_json", "node_signature")
    RECEIPT_JSON_FIELD_NUMBER: _ClassVar[int]
    NODE_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    receipt_json: str
    node_signature: bytes
    def __init__(self, receipt_json: _Optional[str] = ..., node_signature: _Optional[bytes] = ...) -> None: ...

class CosignRequest(_message.Message):
    __slots__ = ("checkpoint_note", "verifier_key", "old_size", "consistency_proof")
    CHECKPOINT_NOTE_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_KEY_FIELD_NUMBER: _ClassVar[int]
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_PROOF_FIELD_NUMBER: _ClassVar[int]
    checkpoint_note: str
    verifier_key: str
    old_size: int
    consistency_proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, checkpoint_note: _Optional[str] = ..., verifier_key: _Optional[str] = ..., old_size: _Optional[int] = ..., consistency_proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class CosignReply(_message.Message):
    __slots__ = ("cosignature_line",)
    COSIGNATURE_LINE_FIELD_NUMBER: _ClassVar[int]
    cosignature_line: str
    def __init__(self, cosignature_line: _Optional[str] = ...) -> None: ...

class WitnessHeadRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WitnessHeadReply(_message.Message):
    __slots__ = ("origin", "size", "root_hash", "verifier_key")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_KEY_FIELD_NUMBER: _ClassVar[int]
    origin: str
    size: int
    root_hash: bytes
    verifier_key: str
    def __init__(self, origin: _Optional[str] = ..., size: _Optional[int] = ..., root_hash: _Optional[bytes] = ..., verifier_key: _Optional[str] = ...) -> None: ...

class FetchPredictionShareRequest(_message.Message):
    __slots__ = ("order_id", "user_id", "node_index", "nonce", "issued_at", "signature")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_INDEX_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    user_id: str
    node_index: int
    nonce: str
    issued_at: int
    signature: bytes
    def __init__(self, order_id: _Optional[str] = ..., user_id: _Optional[str] = ..., node_index: _Optional[int] = ..., nonce: _Optional[str] = ..., issued_at: _Optional[int] = ..., signature: _Optional[bytes] = ...) -> None: ...
