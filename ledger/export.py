"""A consistent single-file copy of a ledger, safe to take while the coordinator writes.

Copying `ledger.db` with `cp` while the coordinator runs gives an empty or stale file: the
newest entries live in the write-ahead log (`ledger.db-wal`) until SQLite checkpoints it.
`export_ledger` reads through SQLite's online backup API from a read-only connection, so
the copy is one snapshot at a single tree size, then folds it into one file (journal mode
DELETE), checks it opens as a ledger of that size, and only then renames it into place:
the output path holds either nothing or a complete copy, never half of one.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from pathlib import Path

from ledger.store import connect_readonly
from mutualmind.errors import AlreadyExists, IntegrityError, InvalidInput


def export_ledger(source: str | Path, out: str | Path, *, overwrite: bool = False) -> int:
    """Write a single-file snapshot of the ledger at `source` to `out`; return its entry count.

    AlreadyExists if `out` exists and `overwrite` is false; InvalidInput if `out` is the
    source itself or its folder does not exist.
    """
    src, dst = Path(source), Path(out)
    if dst.exists() and dst.resolve() == src.resolve():
        raise InvalidInput("--out must differ from the ledger being exported")
    if dst.exists() and not overwrite:
        raise AlreadyExists(f"{dst} exists; choose another --out or pass --force to replace it")
    if dst.is_dir():
        raise InvalidInput(f"{dst} is a directory; give a file name for --out")
    if not dst.parent.is_dir():
        raise InvalidInput(f"folder {dst.parent} does not exist; create it first")
    reader = connect_readonly(src)
    tmp = dst.parent / f".{dst.name}.tmp-{secrets.token_hex(6)}"
    try:
        copy = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            reader.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")
            entries = _check_copy(copy)
        finally:
            copy.close()
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
        _fsync_dir(dst.parent)
        return entries
    finally:
        reader.close()
        tmp.unlink(missing_ok=True)


def _check_copy(copy: sqlite3.Connection) -> int:
    """The copy's entry count, after checking its indexes run 0..n-1 without a gap."""
    count, low, high = copy.execute("SELECT COUNT(*), MIN(idx), MAX(idx) FROM entries").fetchone()
    if count and (low != 0 or high != count - 1):
        raise IntegrityError(f"the exported copy holds entries {low}..{high} but {count} rows")
    return int(count)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
