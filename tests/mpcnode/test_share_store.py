"""The node's share store on real files: atomic writes, refusals that leave nothing behind."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mpcnode.share_store import ShareSpec, ShareStore
from mutualmind.errors import (
    AlreadyExists,
    IntegrityError,
    InvalidInput,
    NotFound,
    QuotaExceeded,
)
from mutualmind.vocabulary.dataset import TableSchema, validate_dataset_id
from mutualmind.vocabulary.quotas import DEFAULT_NODE_QUOTA_BYTES, StorageQuota
from mutualmind.vocabulary.upload import iter_chunks


def _share(rows: int = 50, cols: int = 4, seed: int = 1) -> np.ndarray:
    # test data only; real shares come from os.urandom in provider.sharing
    return np.random.default_rng(seed).integers(-(2**63), 2**63 - 1, size=(rows, cols), dtype=np.int64)


def _snapshot(store: ShareStore) -> list[str]:
    """Every path under shares/, so a refusal can be shown to leave the store unchanged."""
    return sorted(str(p.relative_to(store.shares_dir)) for p in store.shares_dir.rglob("*"))


def test_put_and_load_round_trip(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    data = _share()
    meta = store.put_array(ShareSpec.of_array("heart-2026", 1, data, provider_id="prov-a"), data)
    loaded = store.load("heart-2026")
    assert np.array_equal(loaded.data, data)
    assert loaded.data.dtype == np.dtype("<i8") and loaded.data.shape == (50, 4)
    assert loaded.meta == meta
    assert store.describe("heart-2026").commitment == hashlib.sha256(data.tobytes()).digest()
    assert [m.dataset_id for m in store.list()] == ["heart-2026"]


def test_on_disk_layout_is_raw_int64_and_json(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    data = _share(rows=3, cols=2)
    schema = TableSchema(("x", "y"), ("x",), "y")
    store.put_array(ShareSpec.of_array("d1", 2, data, provider_id="p", schema=schema, purpose="validation"), data)
    folder = tmp_path / "shares" / "d1"
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "share.bin"]
    assert (folder / "share.bin").read_bytes() == data.astype("<i8").tobytes()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["rows"] == 3 and meta["cols"] == 2 and meta["node_index"] == 2
    assert meta["frac_bits"] == 16 and meta["purpose"] == "validation" and meta["size_bytes"] == 48
    assert meta["schema"] == {"columns": ["x", "y"], "feature_columns": ["x"], "label_column": "y"}
    assert meta["commitment"] == hashlib.sha256(data.tobytes()).hexdigest()
    assert meta["provider_id"] == "p" and meta["stored_at"].endswith("+00:00")


def _spec(data: np.ndarray, dataset_id: str = "ds") -> ShareSpec:
    return ShareSpec.of_array(dataset_id, 0, data, provider_id="p")


def test_wrong_size_short_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    data = _share()
    before = _snapshot(store)
    with pytest.raises(InvalidInput, match="ended after 1592 of 1600 bytes"):
        store.put_stream(_spec(data), iter_chunks(data.tobytes()[:-8], 256))
    assert _snapshot(store) == before
    assert not store.has("ds")


def test_wrong_size_long_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    data = _share()
    with pytest.raises(InvalidInput, match="longer than rows\\*cols\\*8 = 1600"):
        store.put_stream(_spec(data), iter_chunks(data.tobytes() + b"\0" * 8, 256))
    assert _snapshot(store) == []


def test_commitment_mismatch_is_refused(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    data = _share()
    tampered = data.copy()
    tampered[7, 2] ^= 1
    with pytest.raises(IntegrityError, match="does not match its registered commitment"):
        store.put_array(_spec(data), tampered)
    assert _snapshot(store) == []


def test_second_upload_of_same_id_is_refused_and_first_kept(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    first, second = _share(seed=1), _share(seed=2)
    store.put_array(_spec(first), first)
    before = _snapshot(store)
    with pytest.raises(AlreadyExists, match="already holds a share of dataset 'ds'"):
        store.put_array(_spec(second), second)
    assert _snapshot(store) == before
    assert np.array_equal(store.load("ds").data, first)


def test_quota_is_checked_before_any_byte(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    data = _share()
    consumed: list[int] = []

    def chunks() -> Iterator[bytes]:
        consumed.append(1)
        yield data.tobytes()

    with pytest.raises(QuotaExceeded, match="1600 bytes, above this node's quota of 1599"):
        store.put_stream(_spec(data), chunks(), quota=StorageQuota(node_bytes=1599))
    assert consumed == [] and _snapshot(store) == []
    store.put_stream(_spec(data), chunks(), quota=StorageQuota(node_bytes=1600))  # exactly at quota is fine
    assert store.has("ds")


def test_quota_counts_what_is_held_in_total_and_per_provider(tmp_path: Path) -> None:
    """The quota bounds the bytes a node holds (not one share): shares of 1600 bytes fit a
    4000-byte node quota only twice, and one provider's only once under a 2000-byte one."""
    store = ShareStore(tmp_path)
    quota = StorageQuota(node_bytes=4000, provider_bytes=2000)

    def spec(dataset_id: str, provider: str, seed: int) -> tuple[ShareSpec, np.ndarray]:
        data = _share(seed=seed)
        return ShareSpec.of_array(dataset_id, 0, data, provider_id=provider), data

    store.put_array(*spec("a1", "alice", 1), quota=quota)
    with pytest.raises(QuotaExceeded, match=r"per-provider quota of 2000 bytes .* 1600 bytes 'alice'"):
        store.put_array(*spec("a2", "alice", 2), quota=quota)
    store.put_array(*spec("b1", "bob", 3), quota=quota)
    with pytest.raises(QuotaExceeded, match=r"above this node's quota of 4000 bytes .* 3200 bytes "
                                            r"already held.*--node-quota-bytes"):
        store.put_array(*spec("c1", "carol", 4), quota=quota)
    assert sorted(m.dataset_id for m in store.list()) == ["a1", "b1"]
    assert not any(p.name.startswith(".tmp-") for p in store.shares_dir.iterdir())
    assert StorageQuota().node_bytes == DEFAULT_NODE_QUOTA_BYTES == 64 << 30


def test_quota_reserves_uploads_in_flight(tmp_path: Path) -> None:
    """Two uploads that each fit alone cannot both start when together they do not fit."""
    store = ShareStore(tmp_path)
    quota = StorageQuota(node_bytes=2000, provider_bytes=2000)
    first, second = _share(seed=1), _share(seed=2)
    started, release = threading.Event(), threading.Event()

    def slow_chunks() -> Iterator[bytes]:
        started.set()
        release.wait(10)
        yield first.tobytes()

    worker = threading.Thread(target=store.put_stream,
                              args=(ShareSpec.of_array("one", 0, first, provider_id="p"), slow_chunks()),
                              kwargs={"quota": quota})
    worker.start()
    assert started.wait(10)
    with pytest.raises(QuotaExceeded, match="1600 bytes already held"):
        store.put_array(ShareSpec.of_array("two", 0, second, provider_id="q"), second, quota=quota)
    release.set()
    worker.join(10)
    assert [m.dataset_id for m in store.list()] == ["one"]


def test_broken_stream_leaves_nothing_and_id_can_be_retried(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    data = _share(rows=400)

    class StreamBroke(Exception):
        pass

    def breaking() -> Iterator[memoryview]:
        for i, chunk in enumerate(iter_chunks(data.tobytes(), 1024)):
            if i == 3:
                raise StreamBroke("client went away")
            yield chunk

    with pytest.raises(StreamBroke):
        store.put_stream(_spec(data), breaking())
    assert _snapshot(store) == []
    store.put_array(_spec(data), data)  # the id was not burnt by the broken attempt
    assert np.array_equal(store.load("ds").data, data)


def test_concurrent_uploads_of_one_id_publish_exactly_one(tmp_path: Path) -> None:
    """A stalled upload does not block another of the same id; the later finisher is refused."""
    store = ShareStore(tmp_path)
    data = _share()
    started, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def stalled() -> Iterator[bytes]:
        started.set()
        release.wait(5)
        yield data.tobytes()

    def first() -> None:
        try:
            store.put_stream(_spec(data), stalled())
        except BaseException as err:  # noqa: BLE001 - checked below
            errors.append(err)

    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(5)
    store.put_array(_spec(data), data)  # not blocked by the stalled one
    release.set()
    thread.join(5)
    assert len(errors) == 1 and isinstance(errors[0], AlreadyExists)
    assert _snapshot(store) == ["ds", "ds/meta.json", "ds/share.bin"]
    assert np.array_equal(store.load("ds").data, data)


def test_a_failing_disk_is_unavailable_and_leaves_nothing(tmp_path: Path) -> None:
    """A real write failure (file size limit, EFBIG) in a subprocess: typed, cleaned up."""
    script = f"""
import resource, signal, numpy as np
from mpcnode.share_store import ShareSpec, ShareStore
from mutualmind.errors import Unavailable
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
store = ShareStore({str(tmp_path)!r})
data = np.arange(4096, dtype=np.int64).reshape(512, 8)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
try:
    store.put_array(ShareSpec.of_array("ds", 0, data), data)
except Unavailable as err:
    print("UNAVAILABLE", err.message)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[2])
    assert run.stdout.startswith("UNAVAILABLE this node could not write the share of 'ds'"), run.stderr
    assert _snapshot(ShareStore(tmp_path)) == []


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", ".hidden", "-x", "a" * 65, "x y", "é"])
def test_unsafe_dataset_ids_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidInput, match="is not valid"):
        validate_dataset_id(bad)
    with pytest.raises(InvalidInput):
        ShareStore(tmp_path).load(bad)


def test_unknown_dataset_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="holds no share of dataset 'nope'"):
        ShareStore(tmp_path).describe("nope")


def test_load_detects_rotted_share(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    data = _share()
    store.put_array(_spec(data), data)
    path = tmp_path / "shares" / "ds" / "share.bin"
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match="no longer matches its commitment"):
        store.load("ds")
    path.write_bytes(bytes(raw[:-8]))
    with pytest.raises(IntegrityError, match="has 1592 bytes, metadata says 1600"):
        store.load("ds")


def test_damaged_metadata_is_an_integrity_error(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    data = _share()
    store.put_array(_spec(data), data)
    (tmp_path / "shares" / "ds" / "meta.json").write_text('{"dataset_id": "ds"}')
    with pytest.raises(IntegrityError, match="metadata is damaged"):
        store.describe("ds")


def test_list_skips_temp_dirs_and_stale_temps_are_removed(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    data = _share()
    store.put_array(_spec(data, "b"), data)
    store.put_array(_spec(data, "a"), data)
    stale = store.shares_dir / ".tmp-c-0123"
    stale.mkdir()
    (stale / "share.bin").write_bytes(b"partial")
    assert [m.dataset_id for m in store.list()] == ["a", "b"]
    assert store.remove_stale_temp() == 1
    assert not stale.exists() and store.has("a") and store.has("b")


def test_spec_rejects_inconsistent_shapes() -> None:
    schema = TableSchema(("x", "y"), ("x",), "y")
    with pytest.raises(InvalidInput, match="schema names 2 columns but the share has 3"):
        ShareSpec("d", "p", 0, 4, 3, 16, schema, b"\0" * 32)
    with pytest.raises(InvalidInput, match="32-byte SHA-256"):
        ShareSpec("d", "p", 0, 4, 2, 16, schema, b"\0" * 31)
    with pytest.raises(InvalidInput, match="at least one row"):
        ShareSpec("d", "p", 0, 0, 2, 16, schema, b"\0" * 32)
    with pytest.raises(InvalidInput, match="both a feature and the label"):
        TableSchema(("x", "y"), ("x", "y"), "y")


def test_only_the_published_dataset_dir_remains_after_put(tmp_path: Path) -> None:
    """After a put, shares/ holds the complete dataset dir and no temp dir."""
    store = ShareStore(tmp_path)
    data = _share(rows=1000, cols=8)
    store.put_array(_spec(data), data)
    assert os.path.getsize(tmp_path / "shares" / "ds" / "share.bin") == 64000
    assert [p.name for p in store.shares_dir.iterdir()] == ["ds"]
