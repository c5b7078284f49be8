"""Shares that are registered on the ledger but not yet on every node, kept for a resume.

Once a dataset is registered, its commitments are on the ledger for good: if an upload
then fails (a node down, the connection lost), new shares of the same table would have
other commitments and the id would be burnt. So `provider share` writes the shares here
before uploading and deletes them when every node has acknowledged; `provider resume`
uploads what is left. Layout, next to the provider's key (the provider's own machine,
where the plaintext lives anyway):

    <dir>/<dataset_id>/share<i>.bin   raw little-endian int64 [rows, cols]
    <dir>/<dataset_id>/meta.json      rows, cols, frac_bits, schema, commitments (hex),
                                      column exponents, label classes

Read back with numpy from raw bytes only, each share checked against its commitment.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from mutualmind.errors import IntegrityError, NotFound
from mutualmind.vocabulary.dataset import TableSchema, validate_dataset_id
from provider.sharing import SharedTable, share_commitment


def pending_dir_for(key_path: Path) -> Path:
    return key_path.with_name(key_path.name + ".pending")


def save_pending(base: Path, dataset_id: str, shared: SharedTable) -> Path:
    """Write every share and the metadata (private dir, mode 0700); returns the dir."""
    folder = Path(base) / validate_dataset_id(dataset_id)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for i, share in enumerate(shared.shares):
        fd = os.open(folder / f"share{i}.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(np.ascontiguousarray(share, dtype="<i8").data.cast("B"))
            handle.flush()
            os.fsync(handle.fileno())
    meta = {
        "rows": shared.rows, "cols": shared.cols, "frac_bits": shared.frac_bits,
        "schema": shared.schema.to_dict(), "commitments": [c.hex() for c in shared.commitments],
        "column_exponents": list(shared.column_exponents), "label_classes": shared.label_classes,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return folder


def load_pending(base: Path, dataset_id: str) -> SharedTable:
    """The pending shares of `dataset_id`, each checked against its commitment."""
    folder = Path(base) / validate_dataset_id(dataset_id)
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"no pending upload of {dataset_id!r} in {base}") from None
    except ValueError as err:
        raise IntegrityError(f"pending metadata of {dataset_id!r} is damaged: {err}") from None
    rows, cols = int(meta["rows"]), int(meta["cols"])
    commitments = [bytes.fromhex(c) for c in meta["commitments"]]
    shares = []
    for i, commitment in enumerate(commitments):
        path = folder / f"share{i}.bin"
        if not path.is_file() or path.stat().st_size != rows * cols * 8:
            raise IntegrityError(f"pending share {i} of {dataset_id!r} is missing or has the wrong size")
        share = np.fromfile(path, dtype="<i8").reshape(rows, cols)
        if share_commitment(share) != commitment:
            raise IntegrityError(f"pending share {i} of {dataset_id!r} no longer matches its commitment")
        shares.append(share)
    return SharedTable(
        schema=TableSchema.from_dict(meta["schema"]), rows=rows, cols=cols,
        frac_bits=int(meta["frac_bits"]), shares=shares, commitments=commitments,
        column_exponents=tuple(int(e) for e in meta.get("column_exponents", [0] * cols)),
        label_classes=int(meta.get("label_classes", 2)),
    )


def remove_pending(base: Path, dataset_id: str) -> None:
    """Forget the kept shares of `dataset_id`; the `<key>.pending` folder goes too once
    it holds no other dataset, so a successful share leaves nothing next to the key."""
    shutil.rmtree(Path(base) / validate_dataset_id(dataset_id), ignore_errors=True)
    try:
        Path(base).rmdir()   # only succeeds when empty: another dataset's shares stay
    except OSError:
        pass
