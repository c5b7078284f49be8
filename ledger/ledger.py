"""The ledger a coordinator writes: signed, hash-chained entries with a Merkle tree on top.

`Ledger` is the single writer of one SQLite file (an exclusive lock file enforces it). An
append checks the entry against the rules and every signature it carries, hashes it,
chains it to the previous entry, signs it, adds it to the Merkle tree, signs a checkpoint
when one is due (every round close, at least every 1,000 entries; the coordinator also
signs one a few seconds after any growth, `checkpoint_if_grown`), and commits all that
in one SQLite transaction; `append_many` does the same for a whole batch (group commit:
one fsync for many individually signed entries). On any failure the state, the tree and
the file are as they were before the call.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import Checkpoint, format_checkpoint
from ledger.entries import GENESIS_PREV_HASH, Entry, entry_hash
from ledger.index import EntryIndex
from ledger.merkle import leaf_hash
from ledger.merkle_tree import MerkleTree
from ledger.signed_note import SignatureLine, add_signatures, verifier_key_string
from ledger.signers import (
    INVALID,
    PROVIDER_SIGNATURE,
    UNEXPECTED,
    UNKNOWN_SIGNER,
    check_signatures,
)
from ledger.state import LedgerState
from ledger.store import LedgerStore, entry_from_row, entry_row
from ledger.views import StateView, TreeView
from mutualmind.errors import (
    IntegrityError,
    InvalidInput,
    MutualMindError,
    NotFound,
    PermissionDenied,
    RuleViolation,
    Unavailable,
)
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.payloads import KINDS, check_payload_size
from mutualmind.vocabulary.signing_keys import public_key_bytes
from mutualmind.vocabulary.states import EntryKind

CHECKPOINT_INTERVAL = 1000
DEFAULT_ORIGIN = "mutualmind.example/ledger"

AppendRequest = tuple[str, dict[str, Any], "bytes | None"]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Ledger:
    """Append-only, signed ledger over one SQLite file; see the module docstring."""

    def __init__(self, store: LedgerStore, key: Ed25519PrivateKey | None, lock_fd: int | None) -> None:
        self._store = store
        self._key = key
        self._lock_fd = lock_fd
        self._mutex = threading.Lock()
        self._state = LedgerState()
        self._tree = MerkleTree()
        self._index = EntryIndex()
        self._last_hash = GENESIS_PREV_HASH
        self._last_time = 0
        self._last_checkpoint: tuple[int, str] | None = None

    # -- opening -------------------------------------------------------------------

    @staticmethod
    def _lock(path: Path) -> int:
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Unavailable(f"another process is writing {path}; a ledger has one writer") from None
        return fd

    @classmethod
    def create(
        cls, path: str | Path, coordinator_key: Ed25519PrivateKey, params: dict[str, Any] | None = None,
        origin: str = DEFAULT_ORIGIN,
    ) -> "Ledger":
        """Create a new ledger file whose entry 0 (genesis) names the coordinator's key.

        `origin` names the log in its checkpoints and is the note key name, so it must be
        a non-empty string without spaces or '+' (e.g. "mutualmind.example/ledger").
        """
        path = Path(path)
        if not origin or any(ch.isspace() or ch == "+" for ch in origin):
            raise InvalidInput(f"origin {origin!r} must be non-empty, without spaces or '+'")
        if path.exists():
            raise InvalidInput(f"{path} already exists; open it instead of creating it")
        lock_fd = cls._lock(path)
        try:
            store = LedgerStore(path, create=True)
        except BaseException:
            os.close(lock_fd)
            raise
        ledger = cls(store, coordinator_key, lock_fd)
        try:
            ledger.append(
                EntryKind.GENESIS,
                {"coordinator_key": public_key_bytes(coordinator_key).hex(), "origin": origin,
                 "params": params or {}},
            )
        except BaseException:
            ledger.close()
            for leftover in ("", "-wal", "-shm", ".lock"):
                Path(f"{path}{leftover}").unlink(missing_ok=True)
            raise
        return ledger

    @classmethod
    def open(cls, path: str | Path, coordinator_key: Ed25519PrivateKey | None = None) -> "Ledger":
        """Open a ledger and replay its state. Without a key it is read-only (no lock taken).

        Opening re-checks every hash, chain link and rule but not the signatures (that is
        `verify_ledger`'s job, over all cores); a file that fails is refused.
        """
        path = Path(path)
        if not path.is_file():
            raise NotFound(f"no ledger file at {path}")
        lock_fd = cls._lock(path) if coordinator_key is not None else None
        try:
            store = LedgerStore(path, create=False)
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise
        ledger = cls(store, coordinator_key, lock_fd)
        try:
            ledger._replay()
        except BaseException:
            ledger.close()
            raise
        return ledger

    def _replay(self) -> None:
        for row in self._store.rows():
            entry = entry_from_row(row)
            if entry.prev_hash != self._last_hash:
                raise IntegrityError(f"entry {entry.index} does not chain to the one before it")
            if entry.time_ms < self._last_time:
                raise IntegrityError(f"entry {entry.index} is dated before the entry preceding it")
            recomputed = entry_hash(entry.index, entry.time_ms, entry.kind, entry.prev_hash,
                                    entry.provider_signature, entry.payload_json)
            if recomputed != entry.hash:
                raise IntegrityError(f"entry {entry.index}'s hash does not match its content")
            try:
                check_payload_size(entry.kind, entry.payload_json)
                payload = entry.payload
                self._state.apply(entry.index, entry.kind, payload, entry.time_ms)
            except MutualMindError as err:
                raise IntegrityError(f"entry {entry.index} breaks a rule on replay: {err.message}") from None
            self._tree.append(leaf_hash(entry.hash))
            self._index.add(entry.index, entry.kind, payload)
            self._last_hash, self._last_time = entry.hash, entry.time_ms
        if self._state.size == 0:
            raise IntegrityError(f"{self._store.path} holds no genesis entry")
        if self._key is not None and public_key_bytes(self._key) != self._state.coordinator_key:
            raise PermissionDenied("this key is not the coordinator key named in the genesis entry")
        stored = self._store.checkpoints()
        self._last_checkpoint = stored[-1] if stored else None

    def close(self) -> None:
        self._store.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of entries (= Merkle tree size)."""
        return self._tree.size

    @property
    def origin(self) -> str:
        """The log's name in its checkpoints, from the genesis entry."""
        return self._state.origin

    @property
    def path(self) -> Path:
        return self._store.path

    def verifier_key(self) -> str:
        """The note verifier key string (`origin+keyid+base64`) for this ledger's checkpoints."""
        from mutualmind.vocabulary.signing_keys import load_public_key

        return verifier_key_string(self.origin, load_public_key(self._state.coordinator_key or b""))

    def root_hash(self, size: int | None = None) -> bytes:
        """Merkle root of the first `size` entries (default: all)."""
        with self._mutex:  # the tree's rows grow during an append in another thread
            return self._tree.root(size)

    def entry(self, index: int) -> Entry:
        """The stored entry at `index`."""
        if not 0 <= index < self.size:
            raise InvalidInput(f"entry {index} does not exist; the ledger holds {self.size}")
        with self._mutex:  # never read inside another thread's open write transaction
            return entry_from_row(next(iter(self._store.rows(index))))

    @property
    def state(self) -> StateView:
        """The replayed state (balances, stakes, rounds, registries), read-only."""
        return StateView(self._state)

    @property
    def tree(self) -> TreeView:
        """The Merkle tree's reading methods; only appends grow it."""
        return TreeView(self._tree)

    def leaf_hash(self, index: int) -> bytes:
        """The Merkle leaf hash of entry `index` (SHA-256(0x00 || entry hash))."""
        if not 0 <= index < self.size:
            raise InvalidInput(f"entry {index} does not exist; the ledger holds {self.size}")
        with self._mutex:
            return self._tree.leaf(index)

    def entries(
        self, start: int = 0, limit: int | None = 100, kind: str | None = None, party: str | None = None,
    ) -> list[Entry]:
        """Entries from `start` on, optionally only one kind or those concerning a party."""
        if not 0 <= start <= self.size:
            raise InvalidInput(f"start {start} is outside the ledger, which holds {self.size} "
                               f"entries (indexes 0..{self.size - 1}); ask from 0 to {self.size}")
        if kind is not None and kind not in KINDS:
            raise InvalidInput(f"unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
        if party is not None:
            return self.entries_for_party(party, start=start, limit=limit, kind=kind)
        if kind is not None:
            with self._mutex:
                indexes = self._index.by_kind(kind, start=start, limit=limit)
            return self._fetch(indexes)
        found: list[Entry] = []
        with self._mutex:
            for row in self._store.rows(start):
                found.append(entry_from_row(row))
                if limit is not None and len(found) >= limit:
                    break
        return found

    # -- indexed queries (ledger.index; no query reads more entries than it returns) -----

    def round_entries(self, round_id: str, kind: str | None = None) -> list[Entry]:
        """Every entry naming `round_id` (opened, result, slashes, payouts, close...), in
        ledger order; only those of `kind` when given; [] for a round never opened."""
        kinds = self._kinds(kind)
        with self._mutex:
            indexes = self._index.by_round(round_id, kinds=kinds)
        return self._fetch(indexes)

    def round_opened(self, round_id: str) -> Entry:
        """The round's round_opened entry (it carries the sponsor's signature); NotFound."""
        found = self.round_entries(round_id, "round_opened")
        if not found:
            raise NotFound(f"no round {round_id!r} on the ledger; open it first (admin round open)")
        return found[0]

    def dataset_registration(self, dataset_id: str) -> Entry:
        """The dataset's dataset_registered entry; NotFound if it was never registered."""
        with self._mutex:
            index = self._index.registration("dataset_registered", dataset_id)
        if index is None:
            raise NotFound(f"no dataset {dataset_id!r} is registered on the ledger")
        return self._fetch([index])[0]

    def dataset_entries(self, dataset_id: str, kind: str | None = None, stop: int | None = None) -> list[Entry]:
        """Entries whose payload names `dataset_id` (registration, stakes, unstakes,
        slashes) before index `stop` (default: all), in ledger order."""
        kinds = self._kinds(kind)
        with self._mutex:
            indexes = self._index.by_dataset(dataset_id, kinds=kinds, stop=stop)
        return self._fetch(indexes)

    def provider_registration(self, provider_id: str) -> Entry:
        """The provider's self-signed provider_registered entry; NotFound if none."""
        with self._mutex:
            index = self._index.registration("provider_registered", provider_id)
        if index is None:
            raise NotFound(f"no provider {provider_id!r} is registered; register it first "
                           "(mutualmind provider register)")
        return self._fetch([index])[0]

    def provider_datasets(self, provider_id: str) -> tuple[str, ...]:
        """The ids of the datasets `provider_id` registered, in ledger order."""
        with self._mutex:
            return self._index.datasets_of(provider_id)

    def provider_entries(self, provider_id: str, limit: int | None = None) -> list[Entry]:
        """A provider's history: every entry naming it as a party (registration, mints,
        transfers both ways, its datasets, stakes, rounds it sponsored, slashes, payouts)."""
        return self.entries_for_party(provider_id, limit=limit)

    def entries_for_party(
        self, party: str, start: int = 0, limit: int | None = 100, kind: str | None = None,
    ) -> list[Entry]:
        """Entries from `start` on concerning `party` (`parties_of`), of `kind` when given."""
        kinds = self._kinds(kind)
        with self._mutex:
            indexes = self._index.by_party(party, kinds=kinds, start=start, limit=limit)
        return self._fetch(indexes)

    @staticmethod
    def _kinds(kind: str | None) -> tuple[str, ...] | None:
        if kind is None:
            return None
        if kind not in KINDS:
            raise InvalidInput(f"unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
        return (kind,)

    def _fetch(self, indexes: list[int]) -> list[Entry]:
        if not indexes:
            return []
        with self._mutex:  # never read inside another thread's open write transaction
            return [entry_from_row(row) for row in self._store.rows_at(indexes)]

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> list[bytes]:
        """RFC 9162 inclusion proof of entry `index` in the tree of `tree_size` entries."""
        with self._mutex:
            return self._tree.inclusion_proof(index, tree_size)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """RFC 9162 proof that the tree of `size1` entries is a prefix of that of `size2`."""
        with self._mutex:
            return self._tree.consistency_proof(size1, size2)

    def checkpoints(self) -> list[tuple[int, str]]:
        """Every stored signed tree head as (tree size, note), oldest first."""
        with self._mutex:
            return self._store.checkpoints()

    def checkpoint(self) -> str:
        """A signed tree head (C2SP tlog-checkpoint note) for the ledger's current size."""
        with self._mutex:
            return self._checkpoint_locked()

    @property
    def checkpointed_size(self) -> int:
        """The tree size of the newest signed checkpoint (0 when none is signed yet)."""
        last = self._last_checkpoint
        return last[0] if last else 0

    def checkpoint_if_grown(self) -> bool:
        """Sign a checkpoint at the current size if the log grew since the last one.

        The coordinator's checkpoint thread calls this every few seconds, so a proof for
        any entry is available shortly after it is appended. True when one was signed.
        """
        with self._mutex:
            if self.checkpointed_size >= self._tree.size:
                return False
            self._checkpoint_locked()
            return True

    def checkpoint_covering(self, index: int) -> str:
        """The newest signed checkpoint if it covers entry `index`, else one signed now."""
        if not 0 <= index < self.size:
            raise InvalidInput(f"entry {index} does not exist; the ledger holds {self.size} "
                               f"entries (indexes 0..{self.size - 1})")
        with self._mutex:
            last = self._last_checkpoint
            if last is not None and last[0] > index:
                return last[1]
            return self._checkpoint_locked()

    def latest_checkpoint(self) -> tuple[int, str] | None:
        """The newest signed checkpoint as (tree size, note), None before the first."""
        return self._last_checkpoint

    def add_checkpoint_signatures(self, size: int, lines: list[SignatureLine]) -> str:
        """Append witness signature lines (cosignatures) to the stored checkpoint of `size`.

        The caller checked them (`ledger.cosignature`); a key's newer line replaces its
        older one. The note stays a valid checkpoint for every reader: signature lines by
        unknown keys are ignored. Returns the note as now stored; NotFound for a size
        that has no checkpoint.
        """
        with self._mutex:
            old = self._store.checkpoint_at(size)
            if old is None:
                raise NotFound(f"no checkpoint of tree size {size} is stored")
            note = add_signatures(old, lines)
            if note != old:
                self._store.add_checkpoint(size, note)
                if self._last_checkpoint and self._last_checkpoint[0] == size:
                    self._last_checkpoint = (size, note)
            return note

    def _checkpoint_locked(self) -> str:
        """Sign and store a head at the current size; the caller holds the writer mutex, so
        the note goes through the one writer connection, never interleaved with an append."""
        size = self._tree.size
        if self._last_checkpoint and self._last_checkpoint[0] == size:
            return self._last_checkpoint[1]
        key = self._writer_key()
        note = format_checkpoint(Checkpoint(self.origin, size, self._tree.root()), key)
        self._store.add_checkpoint(size, note)
        self._last_checkpoint = (size, note)
        return note

    # -- appending -----------------------------------------------------------------

    def _writer_key(self) -> Ed25519PrivateKey:
        if self._key is None:
            raise PermissionDenied("this ledger was opened read-only; open it with the coordinator key")
        return self._key

    def append(self, kind: str, payload: dict[str, Any], provider_signature: bytes | None = None) -> Entry:
        """Append one entry atomically; raises (and writes nothing) if it breaks a rule."""
        return self.append_many([(kind, payload, provider_signature)])[0]

    def append_many(self, requests: Sequence[AppendRequest] | Iterable[AppendRequest]) -> list[Entry]:
        """Append a batch in one transaction: every entry or none (group commit)."""
        key = self._writer_key()
        with self._mutex:
            state, tree = self._state, self._tree
            start_size, start_hash, start_time = tree.size, self._last_hash, self._last_time
            start_checkpoint = self._last_checkpoint
            state.begin()
            try:
                entries, notes, applied = self._build(key, requests)
                self._store.write(start_size, [entry_row(e) for e in entries], notes)
            except BaseException:
                state.rollback()
                tree.truncate(start_size)
                self._last_hash, self._last_time = start_hash, start_time
                self._last_checkpoint = start_checkpoint
                raise
            state.commit()
            # only now, with the batch on disk: the index has nothing to roll back
            self._index.add_all(applied)
            return entries

    def _build(
        self, key: Ed25519PrivateKey, requests: Iterable[AppendRequest],
    ) -> tuple[list[Entry], list[tuple[int, str]], list[tuple[int, str, dict[str, Any]]]]:
        """Apply, sign and chain each request; also returns (index, kind, payload) of each."""
        state, tree = self._state, self._tree
        entries: list[Entry] = []
        notes: list[tuple[int, str]] = []
        applied: list[tuple[int, str, dict[str, Any]]] = []
        now = max(_now_ms(), self._last_time)
        for position, request in enumerate(requests):
            if not isinstance(request, tuple) or len(request) != 3:
                raise InvalidInput(f"batch item {position} must be (kind, payload, provider_signature)")
            kind, payload, provider_signature = request
            if isinstance(kind, EntryKind):
                kind = kind.value  # entries hold the plain string (same bytes either way)
            if provider_signature is not None:
                if not isinstance(provider_signature, (bytes, bytearray)):
                    raise InvalidInput("a provider signature is 64 raw bytes (not hex, not text)")
                if len(provider_signature) != 64:
                    raise PermissionDenied(f"a provider signature is 64 bytes, got {len(provider_signature)}")
                provider_signature = bytes(provider_signature)
            payload_json = canonical_json(payload)
            check_payload_size(str(kind), payload_json)
            payload = json.loads(payload_json)  # the state keeps exactly what is stored, not the caller's object
            index = tree.size
            state.apply(index, kind, payload, now)
            self._check_signatures(kind, payload, payload_json, provider_signature)
            digest = entry_hash(index, now, kind, self._last_hash, provider_signature, payload_json)
            entry = Entry(index, now, kind, payload_json, self._last_hash, digest,
                          key.sign(digest), provider_signature or None)
            entries.append(entry)
            applied.append((index, kind, payload))
            tree.append(leaf_hash(digest))
            self._last_hash, self._last_time = digest, now
            last = self._last_checkpoint[0] if self._last_checkpoint else 0
            if kind == EntryKind.ROUND_CLOSED or tree.size - last >= CHECKPOINT_INTERVAL:
                note = format_checkpoint(Checkpoint(state.origin, tree.size, tree.root()), key)
                notes.append((tree.size, note))
                self._last_checkpoint = (tree.size, note)
        if not entries:
            raise InvalidInput("an append batch needs at least one entry")
        return entries, notes, applied

    def _check_signatures(self, kind: str, payload: dict[str, Any], payload_json: bytes,
                          provider_signature: bytes | None) -> None:
        """The who-signs-what rule (`ledger.signers`) as a typed refusal of the append."""
        found = check_signatures(kind, payload, provider_signature, self._state.providers,
                                 self._state.nodes, payload_json=payload_json)
        if found is None:
            return
        if found.reason == UNEXPECTED:
            raise InvalidInput(found.message)
        if found.reason == UNKNOWN_SIGNER:
            raise RuleViolation("unknown_provider", found.message)
        if found.reason == INVALID and found.problem == PROVIDER_SIGNATURE:
            raise PermissionDenied(f"{found.message}: the signing key does not match the key registered "
                                   f"for provider id {found.party!r}; use the key file that registered it")
        raise PermissionDenied(found.message)
