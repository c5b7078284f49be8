from proto import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RegisterProviderRequest(_message.Message):
    __slots__ = ("name", "public_key", "nonce", "signature")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    name: str
    public_key: bytes
    nonce: str
    signature: bytes
    def __init__(self, name: _Optional[str] = ..., public_key: _Optional[bytes] = ..., nonce: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class RegisterProviderReply(_message.Message):
    __slots__ = ("provider_id", "ledger_index")
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    ledger_index: int
    def __init__(self, provider_id: _Optional[str] = ..., ledger_index: _Optional[int] = ...) -> None: ...

class RegisterDatasetReply(_message.Message):
    __slots__ = ("ledger_index",)
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    ledger_index: int
    def __init__(self, ledger_index: _Optional[int] = ...) -> None: ...

class GetDatasetRequest(_message.Message):
    __slots__ = ("dataset_id",)
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ...) -> None: ...

class GetDatasetReply(_message.Message):
    __slots__ = ("registration", "provider_public_key", "ledger_index", "staked")
    REGISTRATION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    STAKED_FIELD_NUMBER: _ClassVar[int]
    registration: _common_pb2.DatasetRegistration
    provider_public_key: bytes
    ledger_index: int
    staked: int
    def __init__(self, registration: _Optional[_Union[_common_pb2.DatasetRegistration, _Mapping]] = ..., provider_public_key: _Optional[bytes] = ..., ledger_index: _Optional[int] = ..., staked: _Optional[int] = ...) -> None: ...

class StakeRequest(_message.Message):
    __slots__ = ("dataset_id", "amount", "auth")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    amount: int
    auth: _common_pb2.ProviderAuth
    def __init__(self, dataset_id: _Optional[str] = ..., amount: _Optional[int] = ..., auth: _Optional[_Union[_common_pb2.ProviderAuth, _Mapping]] = ...) -> None: ...

class StakeReply(_message.Message):
    __slots__ = ("ledger_index", "staked", "balance")
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    STAKED_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    ledger_index: int
    staked: int
    balance: int
    def __init__(self, ledger_index: _Optional[int] = ..., staked: _Optional[int] = ..., balance: _Optional[int] = ...) -> None: ...

class BalanceRequest(_message.Message):
    __slots__ = ("provider_id",)
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    def __init__(self, provider_id: _Optional[str] = ...) -> None: ...

class BalanceReply(_message.Message):
    __slots__ = ("provider_id", "balance", "staked", "stakes")
    class StakesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    STAKED_FIELD_NUMBER: _ClassVar[int]
    STAKES_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    balance: int
    staked: int
    stakes: _containers.ScalarMap[str, int]
    def __init__(self, provider_id: _Optional[str] = ..., balance: _Optional[int] = ..., staked: _Optional[int] = ..., stakes: _Optional[_Mapping[str, int]] = ...) -> None: ...

class LedgerEntry(_message.Message):
    __slots__ = ("index", "time", "kind", "payload_json", "prev_hash", "entry_hash", "signature")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    ENTRY_HASH_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    index: int
    time: str
    kind: str
    payload_json: str
    prev_hash: bytes
    entry_hash: bytes
    signature: bytes
    def __init__(self, index: _Optional[int] = ..., time: _Optional[str] = ..., kind: _Optional[str] = ..., payload_json: _Optional[str] = ..., prev_hash: _Optional[bytes] = ..., entry_hash: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class ListEntriesRequest(_message.Message):
    __slots__ = ("start", "limit", "kind", "party")
    START_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARTY_FIELD_NUMBER: _ClassVar[int]
    start: int
    limit: int
    kind: str
    party: str
    def __init__(self, start: _Optional[int] = ..., limit: _Optional[int] = ..., kind: _Optional[str] = ..., party: _Optional[str] = ...) -> None: ...

class ListEntriesReply(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[LedgerEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[LedgerEntry, _Mapping]]] = ...) -> None: ...

class CheckpointRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CheckpointReply(_message.Message):
    __slots__ = ("note", "tree_size", "root_hash")
    NOTE_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    note: str
    tree_size: int
    root_hash: bytes
    def __init__(self, note: _Optional[str] = ..., tree_size: _Optional[int] = ..., root_hash: _Optional[bytes] = ...) -> None: ...

class InclusionProofRequest(_message.Message):
    __slots__ = ("index", "tree_size")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    index: int
    tree_size: int
    def __init__(self, index: _Optional[int] = ..., tree_size: _Optional[int] = ...) -> None: ...

class InclusionProofReply(_message.Message):
    __slots__ = ("index", "tree_size", "leaf_hash", "proof", "checkpoint_note", "entry_json")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_NOTE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_JSON_FIELD_NUMBER: _ClassVar[int]
    index: int
    tree_size: int
    leaf_hash: bytes
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    checkpoint_note: str
    entry_json: str
    def __init__(self, index: _Optional[int] = ..., tree_size: _Optional[int] = ..., leaf_hash: _Optional[bytes] = ..., proof: _Optional[_Iterable[bytes]] = ..., checkpoint_note: _Optional[str] = ..., entry_json: _Optional[str] = ...) -> None: ...

class ConsistencyProofRequest(_message.Message):
    __slots__ = ("size1", "size2")
    SIZE1_FIELD_NUMBER: _ClassVar[int]
    SIZE2_FIELD_NUMBER: _ClassVar[int]
    size1: int
    size2: int
    def __init__(self, size1: _Optional[int] = ..., size2: _Optional[int] = ...) -> None: ...

class ConsistencyProofReply(_message.Message):
    __slots__ = ("size1", "size2", "proof")
    SIZE1_FIELD_NUMBER: _ClassVar[int]
    SIZE2_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    size1: int
    size2: int
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, size1: _Optional[int] = ..., size2: _Optional[int] = ..., proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class OpenRoundRequest(_message.Message):
    __slots__ = ("round_id", "pool", "model_spec_json", "validation_dataset", "datasets", "slash_rate_ppm", "epsilon_micro", "auth", "expires_at_ms", "inference_price_per_1000_rows")
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    MODEL_SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_DATASET_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    SLASH_RATE_PPM_FIELD_NUMBER: _ClassVar[int]
    EPSILON_MICRO_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_PRICE_PER_1000_ROWS_FIELD_NUMBER: _ClassVar[int]
    round_id: str
    pool: int
    model_spec_json: str
    validation_dataset: str
    datasets: _containers.RepeatedScalarFieldContainer[str]
    slash_rate_ppm: int
    epsilon_micro: int
    auth: _common_pb2.ProviderAuth
    expires_at_ms: int
    inference_price_per_1000_rows: int
    def __init__(self, round_id: _Optional[str] = ..., pool: _Optional[int] = ..., model_spec_json: _Optional[str] = ..., validation_dataset: _Optional[str] = ..., datasets: _Optional[_Iterable[str]] = ..., slash_rate_ppm: _Optional[int] = ..., epsilon_micro: _Optional[int] = ..., auth: _Optional[_Union[_common_pb2.ProviderAuth, _Mapping]] = ..., expires_at_ms: _Optional[int] = ..., inference_price_per_1000_rows: _Optional[int] = ...) -> None: ...

class AbortRoundRequest(_message.Message):
    __slots__ = ("round_id", "reason", "auth")
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    round_id: str
    reason: str
    auth: _common_pb2.ProviderAuth
    def __init__(self, round_id: _Optional[str] = ..., reason: _Optional[str] = ..., auth: _Optional[_Union[_common_pb2.ProviderAuth, _Mapping]] = ...) -> None: ...

class AbortRoundReply(_message.Message):
    __slots__ = ("ledger_index", "refund_to_sponsor")
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    REFUND_TO_SPONSOR_FIELD_NUMBER: _ClassVar[int]
    ledger_index: int
    refund_to_sponsor: int
    def __init__(self, ledger_index: _Optional[int] = ..., refund_to_sponsor: _Optional[int] = ...) -> None: ...

class UpdateDatasetTermsRequest(_message.Message):
    __slots__ = ("dataset_id", "terms_json", "auth")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    TERMS_JSON_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    terms_json: str
    auth: _common_pb2.ProviderAuth
    def __init__(self, dataset_id: _Optional[str] = ..., terms_json: _Optional[str] = ..., auth: _Optional[_Union[_common_pb2.ProviderAuth, _Mapping]] = ...) -> None: ...

class UpdateDatasetTermsReply(_message.Message):
    __slots__ = ("ledger_index",)
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    ledger_index: int
    def __init__(self, ledger_index: _Optional[int] = ...) -> None: ...

class OpenRoundReply(_message.Message):
    __slots__ = ("ledger_index",)
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    ledger_index: int
    def __init__(self, ledger_index: _Optional[int] = ...) -> None: ...

class GetRoundRequest(_message.Message):
    __slots__ = ("round_id",)
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    round_id: str
    def __init__(self, round_id: _Optional[str] = ...) -> None: ...

class RoundParticipant(_message.Message):
    __slots__ = ("dataset_id", "provider_id", "rows", "stake", "contribution_micro", "payout", "slashed", "error_micro")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    STAKE_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_MICRO_FIELD_NUMBER: _ClassVar[int]
    PAYOUT_FIELD_NUMBER: _ClassVar[int]
    SLASHED_FIELD_NUMBER: _ClassVar[int]
    ERROR_MICRO_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    provider_id: str
    rows: int
    stake: int
    contribution_micro: int
    payout: int
    slashed: int
    error_micro: int
    def __init__(self, dataset_id: _Optional[str] = ..., provider_id: _Optional[str] = ..., rows: _Optional[int] = ..., stake: _Optional[int] = ..., contribution_micro: _Optional[int] = ..., payout: _Optional[int] = ..., slashed: _Optional[int] = ..., error_micro: _Optional[int] = ...) -> None: ...

class RoundView(_message.Message):
    __slots__ = ("round_id", "status", "sponsor", "pool", "model_spec_json", "validation_dataset", "participants", "metrics_micro", "job_digest", "message", "refund_to_sponsor", "stats_json", "opened_payload_json", "sponsor_signature", "expires_at_ms", "failed_runs", "inference_price_per_1000_rows")
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SPONSOR_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    MODEL_SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_DATASET_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    METRICS_MICRO_FIELD_NUMBER: _ClassVar[int]
    JOB_DIGEST_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REFUND_TO_SPONSOR_FIELD_NUMBER: _ClassVar[int]
    STATS_JSON_FIELD_NUMBER: _ClassVar[int]
    OPENED_PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    SPONSOR_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    FAILED_RUNS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_PRICE_PER_1000_ROWS_FIELD_NUMBER: _ClassVar[int]
    round_id: str
    status: str
    sponsor: str
    pool: int
    model_spec_json: str
    validation_dataset: str
    participants: _containers.RepeatedCompositeFieldContainer[RoundParticipant]
    metrics_micro: _containers.RepeatedScalarFieldContainer[int]
    job_digest: str
    message: str
    refund_to_sponsor: int
    stats_json: str
    opened_payload_json: str
    sponsor_signature: bytes
    expires_at_ms: int
    failed_runs: int
    inference_price_per_1000_rows: int
    def __init__(self, round_id: _Optional[str] = ..., status: _Optional[str] = ..., sponsor: _Optional[str] = ..., pool: _Optional[int] = ..., model_spec_json: _Optional[str] = ..., validation_dataset: _Optional[str] = ..., participants: _Optional[_Iterable[_Union[RoundParticipant, _Mapping]]] = ..., metrics_micro: _Optional[_Iterable[int]] = ..., job_digest: _Optional[str] = ..., message: _Optional[str] = ..., refund_to_sponsor: _Optional[int] = ..., stats_json: _Optional[str] = ..., opened_payload_json: _Optional[str] = ..., sponsor_signature: _Optional[bytes] = ..., expires_at_ms: _Optional[int] = ..., failed_runs: _Optional[int] = ..., inference_price_per_1000_rows: _Optional[int] = ...) -> None: ...

class GetProviderRequest(_message.Message):
    __slots__ = ("provider_id",)
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    def __init__(self, provider_id: _Optional[str] = ...) -> None: ...

class ProviderView(_message.Message):
    __slots__ = ("provider_id", "name", "public_key", "nonce", "signature", "ledger_index")
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    name: str
    public_key: bytes
    nonce: str
    signature: bytes
    ledger_index: int
    def __init__(self, provider_id: _Optional[str] = ..., name: _Optional[str] = ..., public_key: _Optional[bytes] = ..., nonce: _Optional[str] = ..., signature: _Optional[bytes] = ..., ledger_index: _Optional[int] = ...) -> None: ...

class DirectoryNodesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeListing(_message.Message):
    __slots__ = ("index", "name", "public_address", "signing_key")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SIGNING_KEY_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    public_address: str
    signing_key: bytes
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., public_address: _Optional[str] = ..., signing_key: _Optional[bytes] = ...) -> None: ...

class DirectoryNodesReply(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeListing]
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeListing, _Mapping]]] = ...) -> None: ...

class CatalogRequest(_message.Message):
    __slots__ = ("provider_id", "offset")
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    offset: int
    def __init__(self, provider_id: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class CatalogDataset(_message.Message):
    __slots__ = ("dataset_id", "provider_id", "purpose", "rows", "cols", "schema_json", "terms_json", "staked")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    TERMS_JSON_FIELD_NUMBER: _ClassVar[int]
    STAKED_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    provider_id: str
    purpose: str
    rows: int
    cols: int
    schema_json: str
    terms_json: str
    staked: int
    def __init__(self, dataset_id: _Optional[str] = ..., provider_id: _Optional[str] = ..., purpose: _Optional[str] = ..., rows: _Optional[int] = ..., cols: _Optional[int] = ..., schema_json: _Optional[str] = ..., terms_json: _Optional[str] = ..., staked: _Optional[int] = ...) -> None: ...

class CatalogReply(_message.Message):
    __slots__ = ("datasets", "next_offset")
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[CatalogDataset]
    next_offset: int
    def __init__(self, datasets: _Optional[_Iterable[_Union[CatalogDataset, _Mapping]]] = ..., next_offset: _Optional[int] = ...) -> None: ...

class RoundsRequest(_message.Message):
    __slots__ = ("status", "offset")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    status: str
    offset: int
    def __init__(self, status: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class RoundsReply(_message.Message):
    __slots__ = ("rounds", "next_offset")
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    rounds: _containers.RepeatedCompositeFieldContainer[RoundView]
    next_offset: int
    def __init__(self, rounds: _Optional[_Iterable[_Union[RoundView, _Mapping]]] = ..., next_offset: _Optional[int] = ...) -> None: ...

class ProviderHistoryRequest(_message.Message):
    __slots__ = ("provider_id", "limit", "start")
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    limit: int
    start: int
    def __init__(self, provider_id: _Optional[str] = ..., limit: _Optional[int] = ..., start: _Optional[int] = ...) -> None: ...

class ProviderHistoryReply(_message.Message):
    __slots__ = ("entries", "next_start")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_START_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[LedgerEntry]
    next_start: int
    def __init__(self, entries: _Optional[_Iterable[_Union[LedgerEntry, _Mapping]]] = ..., next_start: _Optional[int] = ...) -> None: ...

class UnitHolding(_message.Message):
    __slots__ = ("model_id", "account", "units")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    account: str
    units: int
    def __init__(self, model_id: _Optional[str] = ..., account: _Optional[str] = ..., units: _Optional[int] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class ModelView(_message.Message):
    __slots__ = ("model_id", "source_kind", "source_id", "price_per_1000_rows", "fee_account", "holders")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_KIND_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_1000_ROWS_FIELD_NUMBER: _ClassVar[int]
    FEE_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    HOLDERS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    source_kind: str
    source_id: str
    price_per_1000_rows: int
    fee_account: int
    holders: _containers.RepeatedCompositeFieldContainer[UnitHolding]
    def __init__(self, model_id: _Optional[str] = ..., source_kind: _Optional[str] = ..., source_id: _Optional[str] = ..., price_per_1000_rows: _Optional[int] = ..., fee_account: _Optional[int] = ..., holders: _Optional[_Iterable[_Union[UnitHolding, _Mapping]]] = ...) -> None: ...

class AccountUnitsRequest(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: str
    def __init__(self, account: _Optional[str] = ...) -> None: ...

class AccountUnitsReply(_message.Message):
    __slots__ = ("holdings",)
    HOLDINGS_FIELD_NUMBER: _ClassVar[int]
    holdings: _containers.RepeatedCompositeFieldContainer[UnitHolding]
    def __init__(self, holdings: _Optional[_Iterable[_Union[UnitHolding, _Mapping]]] = ...) -> None: ...

class TransferUnitsRequest(_message.Message):
    __slots__ = ("model_id", "to", "units", "auth")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    to: str
    units: int
    auth: _common_pb2.ProviderAuth
    def __init__(self, model_id: _Optional[str] = ..., to: _Optional[str] = ..., units: _Optional[int] = ..., auth: _Optional[_Union[_common_pb2.ProviderAuth, _Mapping]] = ...) -> None: ...

class TransferUnitsReply(_message.Message):
    __slots__ = ("ledger_index", "units_left")
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    UNITS_LEFT_FIELD_NUMBER: _ClassVar[int]
    ledger_index: int
    units_left: int
    def __init__(self, ledger_index: _Optional[int] = ..., units_left: _Optional[int] = ...) -> None: ...

class OwnerSignature(_message.Message):
    __slots__ = ("owner", "signature")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    owner: str
    signature: bytes
    def __init__(self, owner: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class ChangePriceRequest(_message.Message):
    __slots__ = ("model_id", "price_per_1000_rows", "nonce", "signatures")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_1000_ROWS_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    price_per_1000_rows: int
    nonce: str
    signatures: _containers.RepeatedCompositeFieldContainer[OwnerSignature]
    def __init__(self, model_id: _Optional[str] = ..., price_per_1000_rows: _Optional[int] = ..., nonce: _Optional[str] = ..., signatures: _Optional[_Iterable[_Union[OwnerSignature, _Mapping]]] = ...) -> None: ...

class ChangePriceReply(_message.Message):
    __slots__ = ("ledger_index", "signed_units")
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    SIGNED_UNITS_FIELD_NUMBER: _ClassVar[int]
    ledger_index: int
    signed_units: int
    def __init__(self, ledger_index: _Optional[int] = ..., signed_units: _Optional[int] = ...) -> None: ...

class PayDividendRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class Payment(_message.Message):
    __slots__ = ("account", "amount")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    account: str
    amount: int
    def __init__(self, account: _Optional[str] = ..., amount: _Optional[int] = ...) -> None: ...

class PayDividendReply(_message.Message):
    __slots__ = ("ledger_index", "amount", "payments")
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    PAYMENTS_FIELD_NUMBER: _ClassVar[int]
    ledger_index: int
    amount: int
    payments: _containers.RepeatedCompositeFieldContainer[Payment]
    def __init__(self, ledger_index: _Optional[int] = ..., amount: _Optional[int] = ..., payments: _Optional[_Iterable[_Union[Payment, _Mapping]]] = ...) -> None: ...

class SignedTournamentRequest(_message.Message):
    __slots__ = ("payload_json", "signature")
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    payload_json: str
    signature: bytes
    def __init__(self, payload_json: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class GetTournamentRequest(_message.Message):
    __slots__ = ("tournament_id",)
    TOURNAMENT_ID_FIELD_NUMBER: _ClassVar[int]
    tournament_id: str
    def __init__(self, tournament_id: _Optional[str] = ...) -> None: ...

class TournamentView(_message.Message):
    __slots__ = ("tournament_id", "status", "view_json", "ledger_index")
    TOURNAMENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VIEW_JSON_FIELD_NUMBER: _ClassVar[int]
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    tournament_id: str
    status: str
    view_json: str
    ledger_index: int
    def __init__(self, tournament_id: _Optional[str] = ..., status: _Optional[str] = ..., view_json: _Optional[str] = ..., ledger_index: _Optional[int] = ...) -> None: ...

class ListTournamentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTournamentsReply(_message.Message):
    __slots__ = ("tournaments",)
    TOURNAMENTS_FIELD_NUMBER: _ClassVar[int]
    tournaments: _containers.RepeatedCompositeFieldContainer[TournamentView]
    def __init__(self, tournaments: _Optional[_Iterable[_Union[TournamentView, _Mapping]]] = ...) -> None: ...

class OrderInferenceRequest(_message.Message):
    __slots__ = ("order_id", "model_id", "rows", "fee", "issued_at_ms", "auth")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    model_id: str
    rows: int
    fee: int
    issued_at_ms: int
    auth: _common_pb2.ProviderAuth
    def __init__(self, order_id: _Optional[str] = ..., model_id: _Optional[str] = ..., rows: _Optional[int] = ..., fee: _Optional[int] = ..., issued_at_ms: _Optional[int] = ..., auth: _Optional[_Union[_common_pb2.ProviderAuth, _Mapping]] = ...) -> None: ...

class GetInferenceOrderRequest(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    def __init__(self, order_id: _Optional[str] = ...) -> None: ...

class InferenceOrderView(_message.Message):
    __slots__ = ("order_id", "model_id", "user", "rows", "fee", "state", "message", "progress", "ledger_index", "stats_json")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    STATS_JSON_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    model_id: str
    user: str
    rows: int
    fee: int
    state: str
    message: str
    progress: float
    ledger_index: int
    stats_json: str
    def __init__(self, order_id: _Optional[str] = ..., model_id: _Optional[str] = ..., user: _Optional[str] = ..., rows: _Optional[int] = ..., fee: _Optional[int] = ..., state: _Optional[str] = ..., message: _Optional[str] = ..., progress: _Optional[float] = ..., ledger_index: _Optional[int] = ..., stats_json: _Optional[str] = ...) -> None: ...
