"""The market's provider-facing operations, on top of the ledger.

Each operation turns a request into one ledger entry (or refuses it, writing nothing):
the ledger checks the provider's signature over `ledger.entries.request_message(kind,
payload)` and every rule (balances, nonces, ownership), so this module only adds what
the ledger cannot know — the cluster's shape (one share commitment per node, the
fixed-point precision the nodes compute with). It knows nothing of gRPC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger import Entry, Ledger
from mutualmind.errors import InvalidInput, NotFound

FRAC_BITS = 16   # CrypTen's fixed-point precision, used by every node
MAX_COLUMNS = 4096
MAX_ROWS = 50_000_000


@dataclass(frozen=True)
class DatasetView:
    """A registered dataset as the ledger records it, plus its current stake."""

    payload: dict[str, Any]
    provider_public_key: bytes
    ledger_index: int
    staked: int


@dataclass(frozen=True)
class BalanceView:
    provider_id: str
    balance: int
    stakes: dict[str, int]

    @property
    def staked(self) -> int:
        return sum(self.stakes.values())


class Market:
    """Registration, datasets, stakes and balances; every change is one ledger entry."""

    def __init__(self, ledger: Ledger, node_count: int) -> None:
        self.ledger = ledger
        self.node_count = node_count

    # -- providers -----------------------------------------------------------------

    def register_provider(self, provider_id: str, name: str, public_key: bytes, nonce: str,
                          signature: bytes) -> Entry:
        if len(public_key) != 32:
            raise InvalidInput("public_key must be a raw 32-byte Ed25519 public key")
        payload = {"provider_id": provider_id, "name": name, "public_key": public_key.hex(),
                   "nonce": nonce}
        return self.ledger.append("provider_registered", payload, provider_signature=signature)

    def get_provider(self, provider_id: str) -> Entry:
        """The provider's provider_registered entry (its key, self-signed); NotFound if none."""
        return self.ledger.provider_registration(provider_id)

    def balance(self, provider_id: str) -> BalanceView:
        state = self.ledger.state
        if provider_id not in state.providers:
            raise NotFound(f"no provider {provider_id!r} is registered; register it first "
                           "(mutualmind provider register)")
        stakes = {d: state.stakes.get(d, 0) for d in self.ledger.provider_datasets(provider_id)
                  if state.stakes.get(d, 0)}
        return BalanceView(provider_id, state.balance(provider_id), stakes)

    # -- datasets ------------------------------------------------------------------

    def register_dataset(self, payload: dict[str, Any], signature: bytes) -> Entry:
        """Record a provider-signed dataset registration (before any share moves)."""
        commitments = payload.get("share_commitments")
        if not isinstance(commitments, list) or len(commitments) != self.node_count:
            got = len(commitments) if isinstance(commitments, list) else 0
            raise InvalidInput(f"this cluster has {self.node_count} nodes: a dataset needs "
                               f"exactly {self.node_count} share commitments, got {got}")
        if payload.get("frac_bits") != FRAC_BITS:
            raise InvalidInput(f"frac_bits must be {FRAC_BITS} (CrypTen's fixed point), "
                               f"got {payload.get('frac_bits')!r}")
        _check_shape(payload)
        return self.ledger.append("dataset_registered", payload, provider_signature=signature)

    def get_dataset(self, dataset_id: str) -> DatasetView:
        state = self.ledger.state
        payload = state.datasets.get(dataset_id)
        if payload is None:
            raise NotFound(f"no dataset {dataset_id!r} is registered; the provider must "
                           "register it before uploading shares")
        index = self.ledger.dataset_registration(dataset_id).index
        return DatasetView(payload=payload,
                           provider_public_key=state.providers[payload["provider_id"]],
                           ledger_index=index, staked=state.stakes.get(dataset_id, 0))

    # -- stakes --------------------------------------------------------------------

    def stake(self, provider_id: str, dataset_id: str, amount: int, nonce: str,
              signature: bytes, *, unstake: bool = False) -> Entry:
        payload = {"provider_id": provider_id, "dataset_id": dataset_id, "amount": amount,
                   "nonce": nonce}
        return self.ledger.append("unstake" if unstake else "stake", payload,
                                  provider_signature=signature)


def _check_shape(payload: dict[str, Any]) -> None:
    rows, cols, schema = payload.get("rows"), payload.get("cols"), payload.get("schema")
    if not isinstance(rows, int) or not 0 < rows <= MAX_ROWS:
        raise InvalidInput(f"rows must be within 1..{MAX_ROWS}, got {rows!r}")
    if not isinstance(cols, int) or not 0 < cols <= MAX_COLUMNS:
        raise InvalidInput(f"cols must be within 1..{MAX_COLUMNS}, got {cols!r}")
    if not isinstance(schema, dict):
        raise InvalidInput("schema must name the columns, feature columns and label column")
    columns = schema.get("columns") or []
    if len(columns) != cols or len(set(columns)) != cols:
        raise InvalidInput(f"schema must name {cols} distinct columns, got {len(columns)}")
    features = schema.get("feature_columns") or []
    unknown = [c for c in features if c not in columns]
    if not features or unknown:
        raise InvalidInput(f"feature columns must be a non-empty subset of the columns; "
                           f"unknown: {unknown}")
    label = schema.get("label_column")
    if label not in columns or label in features:
        raise InvalidInput(f"label column {label!r} must be a column and not a feature")
