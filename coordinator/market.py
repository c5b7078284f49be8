"""The market's provider-facing operations, on top of the ledger.

Each operation turns a request into one ledger entry (or refuses it, writing nothing):
the ledger checks the provider's signature over `ledger.entries.request_message(kind,
payload)` and every rule (balances, nonces, ownership), so this module only adds what
the ledger cannot know — the cluster's shape (one share commitment per node, the
fixed-point precision the nodes compute with). Schema rules: `mutualmind.vocabulary.dataset`. It knows nothing of gRPC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger import Entry, Ledger
from mutualmind.errors import InvalidInput, NotFound
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.dataset import check_registration
from mutualmind.vocabulary.dataset_terms import DEFAULT_TERMS
from mutualmind.vocabulary.fixed_point import FRAC_BITS
from mutualmind.vocabulary.payloads import check_payload_size
from mutualmind.vocabulary.quotas import StorageQuota, share_bytes
from mutualmind.vocabulary.states import EntryKind


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


@dataclass(frozen=True)
class NodeListing:
    """One node as the public directory shows it: what a provider needs to send it a share
    (its address, and the certificate name to pin) and to check its receipts (its key)."""

    index: int
    name: str
    public_address: str
    signing_key: bytes


@dataclass(frozen=True)
class CatalogEntry:
    """A registered dataset in the catalog: its registration, current terms and stake."""

    payload: dict[str, Any]
    terms: dict[str, Any]
    staked: int


# the entry kinds a provider's history shows: its money at stake and what rounds did to it
HISTORY_KINDS = (EntryKind.STAKE, EntryKind.UNSTAKE, EntryKind.PAYOUT, EntryKind.SLASH)
MAX_DIRECTORY = 1000


class Market:
    """Registration, datasets, stakes and balances; every change is one ledger entry."""

    def __init__(self, ledger: Ledger, node_count: int, quota: StorageQuota | None = None,
                 node_addresses: Sequence[tuple[str, str]] = ()) -> None:
        self.ledger = ledger
        self.node_count = node_count
        # (certificate name, public share address) of node i, from the coordinator's config
        self.node_addresses = tuple(node_addresses)
        # what every node will hold, known from rows x cols at registration
        self.quota = quota if quota is not None else StorageQuota()

    # -- providers -----------------------------------------------------------------

    def register_provider(self, provider_id: str, name: str, public_key: bytes, nonce: str,
                          signature: bytes) -> Entry:
        if len(public_key) != 32:
            raise InvalidInput("public_key must be a raw 32-byte Ed25519 public key")
        payload = {"provider_id": provider_id, "name": name, "public_key": public_key.hex(),
                   "nonce": nonce}
        return self.ledger.append(EntryKind.PROVIDER_REGISTERED, payload, provider_signature=signature)

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
        check_payload_size(EntryKind.DATASET_REGISTERED, canonical_json(payload))  # bound first
        check_registration(payload.get("rows"), payload.get("cols"), payload.get("schema"),
                           payload.get("purpose"))
        self._check_quota(payload)
        return self.ledger.append(EntryKind.DATASET_REGISTERED, payload, provider_signature=signature)

    def _check_quota(self, payload: dict[str, Any]) -> None:
        """Refuse a dataset whose share would not fit the nodes' quotas next to every share
        already registered (each registration puts one share on every node)."""
        total, provider_total = 0, 0
        for registered in self.ledger.state.datasets.values():
            size = share_bytes(registered["rows"], registered["cols"])
            total += size
            if registered["provider_id"] == payload.get("provider_id"):
                provider_total += size
        self.quota.check(dataset_id=str(payload.get("dataset_id")),
                         size=share_bytes(payload["rows"], payload["cols"]),
                         provider_id=str(payload.get("provider_id")), node_held=total,
                         provider_held=provider_total)

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

    def update_terms(self, payload: dict[str, Any], signature: bytes) -> Entry:
        """Record a provider-signed dataset_terms_updated entry (binds later rounds)."""
        if payload.get("dataset_id") not in self.ledger.state.datasets:
            raise NotFound(f"no dataset {payload.get('dataset_id')!r} is registered; register "
                           "it before setting its terms")
        return self.ledger.append(EntryKind.DATASET_TERMS_UPDATED, payload, provider_signature=signature)

    # -- stakes --------------------------------------------------------------------

    def stake(self, provider_id: str, dataset_id: str, amount: int, nonce: str,
              signature: bytes, *, unstake: bool = False) -> Entry:
        payload = {"provider_id": provider_id, "dataset_id": dataset_id, "amount": amount,
                   "nonce": nonce}
        return self.ledger.append(EntryKind.UNSTAKE if unstake else EntryKind.STAKE, payload,
                                  provider_signature=signature)


    # -- directory (read only) -----------------------------------------------------

    def list_nodes(self) -> list[NodeListing]:
        """Every node in index order, so a provider's share i goes to node i."""
        keys = self.ledger.state.nodes
        return [NodeListing(i, name, address, keys.get(i, b""))
                for i, (name, address) in enumerate(self.node_addresses)]

    def catalog(self, provider_id: str = "", offset: int = 0) -> tuple[list[CatalogEntry], int]:
        """Registered datasets (one provider's when given) in ledger order, with their
        current terms and stake; read from the ledger's state, no entry is scanned. A page
        holds up to MAX_DIRECTORY from `offset`; the second value is the next page's offset
        (0 when this is the last)."""
        state = self.ledger.state
        if provider_id:
            if provider_id not in state.providers:
                raise NotFound(f"no provider {provider_id!r} is registered; leave provider_id "
                               "empty for every dataset")
            ids: Sequence[str] = self.ledger.provider_datasets(provider_id)
        else:
            ids = list(state.datasets)
        page = [CatalogEntry(payload=state.datasets[d],
                             terms=state.terms.get(d, DEFAULT_TERMS).to_payload(),
                             staked=state.stakes.get(d, 0))
                for d in ids[offset:offset + MAX_DIRECTORY]]
        end = offset + len(page)
        return page, (end if end < len(ids) else 0)

    def history(self, provider_id: str, limit: int = MAX_DIRECTORY, start: int = 0) -> tuple[list[Entry], int]:
        """The provider's stakes, unstakes, payouts and slashes from ledger index `start`
        on, oldest first, from the ledger's party index (one indexed read per kind): a page
        of up to `limit` (at most MAX_DIRECTORY) and the index to ask from next (0: none)."""
        if provider_id not in self.ledger.state.providers:
            raise NotFound(f"no provider {provider_id!r} is registered; register it first "
                           "(mutualmind provider register)")
        limit = min(limit or MAX_DIRECTORY, MAX_DIRECTORY)
        entries = [e for kind in HISTORY_KINDS
                   for e in self.ledger.entries_for_party(provider_id, start=start, limit=limit, kind=kind)]
        page = sorted(entries, key=lambda e: e.index)[:limit]
        return page, (page[-1].index + 1 if len(page) == limit else 0)
