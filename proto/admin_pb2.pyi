from proto import market_pb2 as _market_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MintRequest(_message.Message):
    __slots__ = ("provider_id", "amount", "memo")
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    amount: int
    memo: str
    def __init__(self, provider_id: _Optional[str] = ..., amount: _Optional[int] = ..., memo: _Optional[str] = ...) -> None: ...

class MintReply(_message.Message):
    __slots__ = ("ledger_index", "balance")
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    ledger_index: int
    balance: int
    def __init__(self, ledger_index: _Optional[int] = ..., balance: _Optional[int] = ...) -> None: ...

class ListNodesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeInfo(_message.Message):
    __slots__ = ("index", "name", "public_address", "cluster_address", "signing_public_key", "health")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SIGNING_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    public_address: str
    cluster_address: str
    signing_public_key: bytes
    health: str
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., public_address: _Optional[str] = ..., cluster_address: _Optional[str] = ..., signing_public_key: _Optional[bytes] = ..., health: _Optional[str] = ...) -> None: ...

class ListNodesReply(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ...) -> None: ...

class ListProvidersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ProviderInfo(_message.Message):
    __slots__ = ("provider_id", "name", "public_key", "balance", "staked")
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    STAKED_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    name: str
    public_key: bytes
    balance: int
    staked: int
    def __init__(self, provider_id: _Optional[str] = ..., name: _Optional[str] = ..., public_key: _Optional[bytes] = ..., balance: _Optional[int] = ..., staked: _Optional[int] = ...) -> None: ...

class ListProvidersReply(_message.Message):
    __slots__ = ("providers",)
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    providers: _containers.RepeatedCompositeFieldContainer[ProviderInfo]
    def __init__(self, providers: _Optional[_Iterable[_Union[ProviderInfo, _Mapping]]] = ...) -> None: ...

class VerifyLedgerRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifyLedgerReply(_message.Message):
    __slots__ = ("ok", "entries", "root_hash", "total_supply", "error", "first_bad_index")
    OK_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SUPPLY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FIRST_BAD_INDEX_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    entries: int
    root_hash: bytes
    total_supply: int
    error: str
    first_bad_index: int
    def __init__(self, ok: _Optional[bool] = ..., entries: _Optional[int] = ..., root_hash: _Optional[bytes] = ..., total_supply: _Optional[int] = ..., error: _Optional[str] = ..., first_bad_index: _Optional[int] = ...) -> None: ...

class RunRoundRequest(_message.Message):
    __slots__ = ("round_id", "deadline_s")
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_S_FIELD_NUMBER: _ClassVar[int]
    round_id: str
    deadline_s: float
    def __init__(self, round_id: _Optional[str] = ..., deadline_s: _Optional[float] = ...) -> None: ...

class RoundProgress(_message.Message):
    __slots__ = ("stage", "fraction", "message", "round")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    stage: str
    fraction: float
    message: str
    round: _market_pb2.RoundView
    def __init__(self, stage: _Optional[str] = ..., fraction: _Optional[float] = ..., message: _Optional[str] = ..., round: _Optional[_Union[_market_pb2.RoundView, _Mapping]] = ...) -> None: ...

class VerifyRoundRequest(_message.Message):
    __slots__ = ("round_id", "tolerance", "deadline_s")
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_S_FIELD_NUMBER: _ClassVar[int]
    round_id: str
    tolerance: float
    deadline_s: float
    def __init__(self, round_id: _Optional[str] = ..., tolerance: _Optional[float] = ..., deadline_s: _Optional[float] = ...) -> None: ...

class VerifyRoundReply(_message.Message):
    __slots__ = ("agrees", "recorded_micro", "recomputed_micro", "max_abs_diff_micro", "tolerance_micro")
    AGREES_FIELD_NUMBER: _ClassVar[int]
    RECORDED_MICRO_FIELD_NUMBER: _ClassVar[int]
    RECOMPUTED_MICRO_FIELD_NUMBER: _ClassVar[int]
    MAX_ABS_DIFF_MICRO_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_MICRO_FIELD_NUMBER: _ClassVar[int]
    agrees: bool
    recorded_micro: _containers.RepeatedScalarFieldContainer[int]
    recomputed_micro: _containers.RepeatedScalarFieldContainer[int]
    max_abs_diff_micro: int
    tolerance_micro: int
    def __init__(self, agrees: _Optional[bool] = ..., recorded_micro: _Optional[_Iterable[int]] = ..., recomputed_micro: _Optional[_Iterable[int]] = ..., max_abs_diff_micro: _Optional[int] = ..., tolerance_micro: _Optional[int] = ...) -> None: ...

class AdminAbortRoundRequest(_message.Message):
    __slots__ = ("round_id", "reason")
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    round_id: str
    reason: str
    def __init__(self, round_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ListRoundsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRoundsReply(_message.Message):
    __slots__ = ("rounds",)
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    rounds: _containers.RepeatedCompositeFieldContainer[_market_pb2.RoundView]
    def __init__(self, rounds: _Optional[_Iterable[_Union[_market_pb2.RoundView, _Mapping]]] = ...) -> None: ...

class TournamentJobRequest(_message.Message):
    __slots__ = ("tournament_id", "deadline_s")
    TOURNAMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_S_FIELD_NUMBER: _ClassVar[int]
    tournament_id: str
    deadline_s: float
    def __init__(self, tournament_id: _Optional[str] = ..., deadline_s: _Optional[float] = ...) -> None: ...

class AbortTournamentRequest(_message.Message):
    __slots__ = ("tournament_id", "reason")
    TOURNAMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tournament_id: str
    reason: str
    def __init__(self, tournament_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class VerifyTournamentRequest(_message.Message):
    __slots__ = ("tournament_id", "tolerance_micro", "deadline_s")
    TOURNAMENT_ID_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_MICRO_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_S_FIELD_NUMBER: _ClassVar[int]
    tournament_id: str
    tolerance_micro: int
    deadline_s: float
    def __init__(self, tournament_id: _Optional[str] = ..., tolerance_micro: _Optional[int] = ..., deadline_s: _Optional[float] = ...) -> None: ...

class VerifyTournamentReply(_message.Message):
    __slots__ = ("agrees", "view_json")
    AGREES_FIELD_NUMBER: _ClassVar[int]
    VIEW_JSON_FIELD_NUMBER: _ClassVar[int]
    agrees: bool
    view_json: str
    def __init__(self, agrees: _Optional[bool] = ..., view_json: _Optional[str] = ...) -> None: ...
