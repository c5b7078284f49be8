"""How a node learns which datasets exist and what share it must accept for each.

A node accepts share bytes only if they hash to the commitment the *provider* signed in
its dataset registration. `DatasetRegistry.get` returns that registration; every
implementation verifies the provider's Ed25519 signature itself, so a node need not
trust whoever relayed the registration (the coordinator) for its content.

Implementations:
  * `CoordinatorRegistry` (`mpcnode.coordinator_client`) asks the coordinator's
    Market.GetDataset over TLS.
  * `InMemoryRegistry` holds registrations handed to it (tests and single-machine demos
    before a coordinator runs); it verifies exactly as the coordinator-backed one does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from mpcnode.share_store import ShareSpec
from mutualmind.errors import InvalidInput, NotFound
from mutualmind.vocabulary.dataset import TableSchema
from mutualmind.vocabulary.signed_requests import (
    dataset_registration_payload,
    schema_from_proto,
    verify_dataset_registration,
)
from proto import common_pb2


@dataclass(frozen=True)
class RegisteredDataset:
    """A provider-signed dataset registration, already verified."""

    dataset_id: str
    provider_id: str
    provider_public_key: bytes
    rows: int
    cols: int
    frac_bits: int
    schema: TableSchema
    share_commitments: tuple[bytes, ...]
    purpose: str
    payload: dict[str, Any] = field(repr=False, compare=False)  # the dataset_registered payload signed
    column_exponents: tuple[int, ...] = ()
    label_classes: int = 2

    @classmethod
    def from_registration(
        cls, registration: common_pb2.DatasetRegistration, provider_public_key: bytes
    ) -> RegisteredDataset:
        """Verify the provider's signature, then keep the fields a node needs."""
        verify_dataset_registration(registration, provider_public_key)
        return cls(
            dataset_id=registration.dataset_id,
            provider_id=registration.provider_id,
            provider_public_key=bytes(provider_public_key),
            rows=registration.rows,
            cols=registration.cols,
            frac_bits=registration.frac_bits,
            schema=schema_from_proto(registration.schema),
            share_commitments=tuple(bytes(c) for c in registration.share_commitments),
            purpose=registration.purpose,
            column_exponents=tuple(registration.column_exponents),
            label_classes=registration.label_classes,
            payload=dataset_registration_payload(registration),
        )

    def spec_for(self, node_index: int) -> ShareSpec:
        """The share node `node_index` must receive: shape, schema, its commitment."""
        if not 0 <= node_index < len(self.share_commitments):
            raise InvalidInput(
                f"dataset {self.dataset_id!r} was shared over {len(self.share_commitments)} nodes; "
                f"there is no share for node {node_index}"
            )
        return ShareSpec(
            dataset_id=self.dataset_id,
            provider_id=self.provider_id,
            node_index=node_index,
            rows=self.rows,
            cols=self.cols,
            frac_bits=self.frac_bits,
            schema=self.schema,
            commitment=self.share_commitments[node_index],
            purpose=self.purpose,
            column_exponents=self.column_exponents,
        )


class DatasetRegistry(Protocol):
    """Where a node looks up a dataset registration."""

    def get(self, dataset_id: str) -> RegisteredDataset:
        """The verified registration; NotFound for an unknown id."""
        ...


class InMemoryRegistry:
    """Registrations held in memory, verified on `add` (a simulator of the ledger's view)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, RegisteredDataset] = {}

    def add(self, registration: common_pb2.DatasetRegistration, provider_public_key: bytes) -> RegisteredDataset:
        entry = RegisteredDataset.from_registration(registration, provider_public_key)
        with self._lock:
            self._entries[entry.dataset_id] = entry
        return entry

    def get(self, dataset_id: str) -> RegisteredDataset:
        with self._lock:
            entry = self._entries.get(dataset_id)
        if entry is None:
            raise NotFound(
                f"dataset {dataset_id!r} is not registered; register it with the coordinator before uploading"
            )
        return entry
