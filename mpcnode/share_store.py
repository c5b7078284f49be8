"""A node's share store: one directory per dataset, written atomically, never unpickled.

Layout (the MPC worker reads it; keep exactly this):

    <data_dir>/shares/<dataset_id>/share.bin   raw little-endian int64, rows*cols*8 bytes
    <data_dir>/shares/<dataset_id>/meta.json   ShareMeta as JSON (commitment in hex)

Invariants, which every writer here keeps:
  * A dataset directory exists only when both files are complete, fsynced and the share
    bytes hash to the commitment: a share is written into a temp dir inside `shares/`
    (`.tmp-<id>-<random>`), both files and the dir are fsynced, then the dir is renamed
    into place in one step. A refused or broken upload removes its temp dir.
  * A dataset id is written once: a second upload of the same id is refused. Uploads of
    one id may run at the same time (each in its own temp dir), so a stalled or hostile
    stream cannot block the provider's own; the first complete one is published, the
    others are refused. Only bytes matching the commitment can complete, so they agree.
  * The bytes a node holds stay within its `StorageQuota` (all providers, and each
    provider): stored shares plus uploads in flight, reserved before the first byte is
    written, so concurrent uploads cannot jointly overshoot.
  * A removed dataset (`remove`: an inference order's query rows once served) leaves a
    tombstone `.removed-<id>`, written before its directory goes, so the id is never
    uploaded again: readers see the complete directory or nothing.
  * Dataset ids are validated before they touch a path.
  * Share bytes are read with numpy from raw bytes only (no pickle, no torch.load).

The store knows nothing of gRPC: `mpcnode.servicer` feeds it chunks and maps its typed
errors to statuses.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from mutualmind.errors import (
    AlreadyExists,
    IntegrityError,
    InvalidInput,
    NotFound,
    Unavailable,
)
from mutualmind.vocabulary.dataset import (
    DATASET_ID_PATTERN,
    INT64_BYTES,
    PURPOSES,
    TableSchema,
    check_table_shape,
    validate_dataset_id,
)
from mutualmind.vocabulary.fixed_point import FRAC_BITS
from mutualmind.vocabulary.quotas import StorageQuota
from mutualmind.vocabulary.upload import iter_chunks

SHARE_FILE = "share.bin"
META_FILE = "meta.json"
TEMP_PREFIX = ".tmp-"
REMOVED_PREFIX = ".removed-"  # a removed dataset's tombstone (a file; no dataset id starts with ".")


@dataclass(frozen=True)
class ShareSpec:
    """What a share must be before any byte of it is accepted.

    Built by the node from the upload header and the provider-signed registration; the
    store checks the received bytes against it (size, then SHA-256 commitment).
    """

    dataset_id: str
    provider_id: str
    node_index: int
    rows: int
    cols: int
    frac_bits: int
    schema: TableSchema
    commitment: bytes
    purpose: str = "training"
    # the provider's public power-of-two scale per column (column_scale); () = all 0
    column_exponents: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        validate_dataset_id(self.dataset_id)
        check_table_shape(self.rows, self.cols, self.schema, what="share")
        if len(self.commitment) != 32:
            raise InvalidInput(f"commitment must be a 32-byte SHA-256 digest, got {len(self.commitment)} bytes")
        if self.purpose not in PURPOSES:
            raise InvalidInput(f"purpose {self.purpose!r} must be one of {PURPOSES}")
        if self.node_index < 0:
            raise InvalidInput(f"node index {self.node_index} must not be negative")
        if self.column_exponents and len(self.column_exponents) != self.cols:
            raise InvalidInput(f"{len(self.column_exponents)} column exponents for {self.cols} columns")

    @property
    def size_bytes(self) -> int:
        return self.rows * self.cols * INT64_BYTES

    @classmethod
    def of_array(
        cls,
        dataset_id: str,
        node_index: int,
        data: np.ndarray,
        *,
        provider_id: str = "local",
        frac_bits: int = FRAC_BITS,
        schema: TableSchema | None = None,
        purpose: str = "training",
        column_exponents: tuple[int, ...] = (),
    ) -> ShareSpec:
        """The spec whose commitment is the SHA-256 of `data` (for `put_array` in tests and
        local tools). Without a schema, columns are named c0..c{n-1}, all features."""
        array = np.ascontiguousarray(data, dtype="<i8")
        if array.ndim != 2:
            raise InvalidInput(f"a share is a 2-D int64 matrix, got shape {array.shape}")
        rows, cols = array.shape
        if schema is None:
            names = tuple(f"c{i}" for i in range(cols))
            schema = TableSchema(names, names, "")
        return cls(
            dataset_id=dataset_id,
            provider_id=provider_id,
            node_index=node_index,
            rows=rows,
            cols=cols,
            frac_bits=frac_bits,
            schema=schema,
            commitment=hashlib.sha256(array.data.cast("B")).digest(),
            purpose=purpose,
            column_exponents=tuple(column_exponents),
        )


@dataclass(frozen=True)
class ShareMeta:
    """The metadata stored next to a share (meta.json)."""

    dataset_id: str
    provider_id: str
    node_index: int
    rows: int
    cols: int
    frac_bits: int
    schema: TableSchema
    commitment: bytes
    purpose: str
    size_bytes: int
    stored_at: str
    column_exponents: tuple[int, ...] = ()

    @property
    def exponents(self) -> tuple[int, ...]:
        """One power-of-two exponent per column (0 where the provider did not scale)."""
        return self.column_exponents or (0,) * self.cols

    def to_json(self) -> str:
        return json.dumps(
            {
                "dataset_id": self.dataset_id,
                "provider_id": self.provider_id,
                "node_index": self.node_index,
                "rows": self.rows,
                "cols": self.cols,
                "frac_bits": self.frac_bits,
                "schema": self.schema.to_dict(),
                "commitment": self.commitment.hex(),
                "purpose": self.purpose,
                "size_bytes": self.size_bytes,
                "stored_at": self.stored_at,
                "column_exponents": list(self.column_exponents),
            },
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> ShareMeta:
        """Parse meta.json; anything malformed is an IntegrityError (the store is damaged)."""
        try:
            raw = json.loads(text)
            meta = cls(
                dataset_id=validate_dataset_id(raw["dataset_id"]),
                provider_id=str(raw["provider_id"]),
                node_index=int(raw["node_index"]),
                rows=int(raw["rows"]),
                cols=int(raw["cols"]),
                frac_bits=int(raw["frac_bits"]),
                schema=TableSchema.from_dict(raw["schema"]),
                commitment=bytes.fromhex(raw["commitment"]),
                purpose=str(raw["purpose"]),
                size_bytes=int(raw["size_bytes"]),
                stored_at=str(raw["stored_at"]),
                column_exponents=tuple(int(e) for e in raw.get("column_exponents", [])),
            )
        except (ValueError, KeyError, TypeError, InvalidInput) as err:
            raise IntegrityError(f"share metadata is damaged ({err}); remove the dataset and re-upload") from err
        if meta.size_bytes != meta.rows * meta.cols * INT64_BYTES:
            raise IntegrityError(f"share metadata of {meta.dataset_id} has a size that does not match its shape")
        return meta

    @classmethod
    def from_spec(cls, spec: ShareSpec) -> ShareMeta:
        return cls(
            dataset_id=spec.dataset_id,
            provider_id=spec.provider_id,
            node_index=spec.node_index,
            rows=spec.rows,
            cols=spec.cols,
            frac_bits=spec.frac_bits,
            schema=spec.schema,
            commitment=spec.commitment,
            purpose=spec.purpose,
            size_bytes=spec.size_bytes,
            stored_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            column_exponents=spec.column_exponents,
        )


@dataclass(frozen=True)
class StoredShare:
    """A loaded share: its metadata and the int64 matrix [rows, cols] (writable copy)."""

    meta: ShareMeta
    data: np.ndarray = field(repr=False)


class ShareStore:
    """File-backed share store under `<data_dir>/shares/` (see the module docstring).

    Safe for concurrent use from the threads of one server and from other processes:
    publishing is one rename, which fails when the dataset dir already exists. Readers
    in other processes (the MPC worker) only ever see complete dataset directories.
    """

    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir)
        self.shares_dir = self.data_dir / "shares"
        self.shares_dir.mkdir(parents=True, exist_ok=True)
        self._publish_lock = threading.Lock()
        self._quota_lock = threading.Lock()
        self._reserved: dict[int, tuple[str, int]] = {}  # upload token -> (provider, bytes)
        self._next_token = 0

    # ---- reading ---------------------------------------------------------------

    def path_of(self, dataset_id: str) -> Path:
        return self.shares_dir / validate_dataset_id(dataset_id)

    def has(self, dataset_id: str) -> bool:
        return (self.path_of(dataset_id) / META_FILE).is_file()

    def describe(self, dataset_id: str) -> ShareMeta:
        """The metadata of a stored share; NotFound if this node holds no such dataset."""
        meta_path = self.path_of(dataset_id) / META_FILE
        try:
            text = meta_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFound(
                f"this node holds no share of dataset {dataset_id!r}; list datasets to see what it holds"
            ) from None
        meta = ShareMeta.from_json(text)
        if meta.dataset_id != dataset_id:
            raise IntegrityError(f"metadata in {dataset_id!r} names dataset {meta.dataset_id!r}")
        return meta

    def list(self) -> list[ShareMeta]:
        """Every stored share's metadata, sorted by dataset id (temp dirs are skipped)."""
        metas = []
        for entry in sorted(self.shares_dir.iterdir()):
            if entry.name.startswith(TEMP_PREFIX) or not DATASET_ID_PATTERN.fullmatch(entry.name):
                continue
            if (entry / META_FILE).is_file():
                metas.append(self.describe(entry.name))
        return metas

    def load(self, dataset_id: str, *, verify: bool = True) -> StoredShare:
        """Read a share as an int64 matrix [rows, cols] with numpy (never pickle).

        With `verify` (the default) the bytes are hashed and compared with the stored
        commitment, so a worker never computes on a share that rotted on disk.
        """
        meta = self.describe(dataset_id)
        share_path = self.path_of(dataset_id) / SHARE_FILE
        size = share_path.stat().st_size
        if size != meta.size_bytes:
            raise IntegrityError(
                f"share file of {dataset_id!r} has {size} bytes, metadata says {meta.size_bytes}"
            )
        buffer = bytearray(size)
        with open(share_path, "rb") as handle:
            read = handle.readinto(buffer)
        if read != size:
            raise IntegrityError(f"share file of {dataset_id!r} was truncated while reading")
        if verify and hashlib.sha256(buffer).digest() != meta.commitment:
            raise IntegrityError(
                f"share of {dataset_id!r} no longer matches its commitment; remove it and re-upload"
            )
        data = np.frombuffer(buffer, dtype="<i8").reshape(meta.rows, meta.cols)
        return StoredShare(meta=meta, data=data)

    # ---- writing ---------------------------------------------------------------

    def held_bytes(self) -> tuple[int, dict[str, int]]:
        """Share bytes held (stored and reserved by uploads in flight): in total, per provider."""
        per_provider: dict[str, int] = {}
        for meta in self.list():
            per_provider[meta.provider_id] = per_provider.get(meta.provider_id, 0) + meta.size_bytes
        for provider, size in self._reserved.values():
            per_provider[provider] = per_provider.get(provider, 0) + size
        return sum(per_provider.values()), per_provider

    def _reserve(self, spec: ShareSpec, quota: StorageQuota) -> int:
        """Check the quota and reserve the share's bytes; returns the token to release."""
        with self._quota_lock:
            total, per_provider = self.held_bytes()
            quota.check(dataset_id=spec.dataset_id, size=spec.size_bytes,
                        provider_id=spec.provider_id, node_held=total,
                        provider_held=per_provider.get(spec.provider_id, 0))
            self._next_token += 1
            self._reserved[self._next_token] = (spec.provider_id, spec.size_bytes)
            return self._next_token

    def put_stream(
        self,
        spec: ShareSpec,
        chunks: Iterable[bytes | memoryview],
        *,
        quota: StorageQuota | None = None,
    ) -> ShareMeta:
        """Store a share arriving in chunks; all-or-nothing.

        Refuses, leaving nothing behind: a share that does not fit `quota` next to what
        the store holds (QuotaExceeded, before reading any chunk), an id already stored, checked before
        and again when publishing (AlreadyExists), more or fewer bytes than rows*cols*8
        (InvalidInput), bytes whose SHA-256 differs from the commitment (IntegrityError),
        a disk that fails or fills up (Unavailable), and any exception raised by `chunks`
        itself (a broken stream), which propagates.
        """
        self._refuse_if_stored(spec.dataset_id)
        token = self._reserve(spec, quota) if quota is not None else None
        try:
            return self._put_reserved(spec, chunks)
        finally:
            if token is not None:
                with self._quota_lock:
                    del self._reserved[token]

    def _put_reserved(self, spec: ShareSpec, chunks: Iterable[bytes | memoryview]) -> ShareMeta:
        temp_dir: Path | None = None
        try:
            temp_dir = Path(
                _mkdtemp(self.shares_dir, f"{TEMP_PREFIX}{spec.dataset_id}-")
            )
            digest = self._write_share(temp_dir / SHARE_FILE, spec, chunks)
            if digest != spec.commitment:
                raise IntegrityError(
                    f"share of {spec.dataset_id!r} for node {spec.node_index} does not match its "
                    f"registered commitment (got sha256 {digest.hex()[:16]}..., expected "
                    f"{spec.commitment.hex()[:16]}...); re-share and upload the registered bytes"
                )
            meta = ShareMeta.from_spec(spec)
            _write_durable(temp_dir / META_FILE, meta.to_json().encode("utf-8"))
            _fsync_dir(temp_dir)
            self._publish(temp_dir, spec.dataset_id)
            temp_dir = None
            return meta
        except OSError as err:
            raise Unavailable(
                f"this node could not write the share of {spec.dataset_id!r} ({err.strerror or err}); "
                "nothing was stored - retry later or ask the operator to check the node's disk"
            ) from err
        finally:
            if temp_dir is not None:
                shutil.rmtree(temp_dir, ignore_errors=True)

    def put_array(self, spec: ShareSpec, data: np.ndarray, *, quota: StorageQuota | None = None) -> ShareMeta:
        """Store a share given as an int64 matrix (tests, the dealer, local tools)."""
        array = np.ascontiguousarray(data, dtype="<i8")
        if array.shape != (spec.rows, spec.cols):
            raise InvalidInput(f"share array has shape {array.shape}, spec says ({spec.rows}, {spec.cols})")
        return self.put_stream(spec, iter_chunks(array.data.cast("B")), quota=quota)

    def remove_stale_temp(self) -> int:
        """Delete temp dirs left by a crash mid-upload; call once at server start-up only
        (another live writer's temp dir would be removed too). Returns how many."""
        removed = 0
        for entry in self.shares_dir.iterdir():
            if entry.name.startswith(TEMP_PREFIX) and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        return removed

    def remove(self, dataset_id: str, reason: str) -> bool:
        """Delete a stored share for good, leaving a tombstone that says why (`removed`);
        False when this node holds no such share. The directory is renamed out of place
        in one step, then deleted, so a reader sees the whole share or none."""
        with self._publish_lock:
            path = self.path_of(dataset_id)
            if not path.is_dir():
                return False
            tombstone = {"dataset_id": dataset_id, "reason": reason,
                         "removed_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            _write_durable(self.shares_dir / f"{REMOVED_PREFIX}{dataset_id}",
                           json.dumps(tombstone).encode("utf-8"))
            doomed = Path(_mkdtemp(self.shares_dir, f"{TEMP_PREFIX}{dataset_id}-removed-"))
            os.replace(path, doomed / "share")
            _fsync_dir(self.shares_dir)
        shutil.rmtree(doomed, ignore_errors=True)
        return True

    def removed(self, dataset_id: str) -> dict[str, str] | None:
        """The tombstone of a removed share ({dataset_id, reason, removed_at}), or None."""
        try:
            raw = json.loads((self.shares_dir / f"{REMOVED_PREFIX}{validate_dataset_id(dataset_id)}")
                             .read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return {k: str(raw.get(k, "")) for k in ("dataset_id", "reason", "removed_at")}

    def _refuse_if_stored(self, dataset_id: str) -> None:
        gone = self.removed(dataset_id)
        if gone is not None:
            raise AlreadyExists(
                f"dataset {dataset_id!r} was held here and deleted at {gone['removed_at']} "
                f"({gone['reason']}); a dataset id is uploaded once - register a new id"
            )
        if self.has(dataset_id):
            raise AlreadyExists(
                f"this node already holds a share of dataset {dataset_id!r}; a dataset id "
                "is uploaded once - register a new id for new data"
            )

    def _write_share(self, path: Path, spec: ShareSpec, chunks: Iterable[bytes | memoryview]) -> bytes:
        expected = spec.size_bytes
        received = 0
        hasher = hashlib.sha256()
        # buffered: BufferedWriter retries short writes (a raw write may store only part)
        with open(path, "wb") as handle:
            for chunk in chunks:
                received += len(chunk)
                if received > expected:
                    raise InvalidInput(
                        f"share of {spec.dataset_id!r} is longer than rows*cols*8 = {expected} "
                        f"bytes for [{spec.rows}, {spec.cols}]; send exactly the registered shape"
                    )
                hasher.update(chunk)
                handle.write(chunk)
            if received != expected:
                raise InvalidInput(
                    f"share of {spec.dataset_id!r} ended after {received} of {expected} bytes "
                    f"([{spec.rows}, {spec.cols}] int64); send the whole share"
                )
            handle.flush()
            os.fsync(handle.fileno())
            written = os.fstat(handle.fileno()).st_size
        if written != expected:  # never publish a file shorter than what was hashed
            raise OSError(f"wrote {written} of {expected} bytes")
        return hasher.digest()

    def _publish(self, temp_dir: Path, dataset_id: str) -> None:
        """Rename the temp dir into place; refused if another upload got there first."""
        final = self.path_of(dataset_id)
        with self._publish_lock:
            self._refuse_if_stored(dataset_id)
            try:
                os.rename(temp_dir, final)
            except OSError as err:  # another process published the same id first
                if final.exists():
                    raise AlreadyExists(
                        f"this node already holds a share of dataset {dataset_id!r}"
                    ) from err
                raise
        _fsync_dir(self.shares_dir)


def _mkdtemp(parent: Path, prefix: str) -> str:
    """A fresh private directory in `parent` with a random suffix from `secrets`."""
    while True:
        path = parent / f"{prefix}{secrets.token_hex(8)}"
        try:
            path.mkdir(mode=0o700)
            return str(path)
        except FileExistsError:
            continue


def _write_durable(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
