"""SQLite storage of entries and checkpoints: WAL, synchronous=FULL, append-only.

One transaction per group commit: either every entry of a batch (and the checkpoints
signed for it) is on disk after COMMIT, or none is; SQLite's WAL gives exactly that even
when the process is killed mid-write. Triggers refuse UPDATE and DELETE on entries, so
only someone editing the file by other means can rewrite history, and `verify` finds that.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterable, Iterator

from ledger.entries import Entry
from mutualmind.errors import IntegrityError, InvalidInput, NotFound
from mutualmind.vocabulary.payloads import parties_of

SCHEMA_VERSION = "mutualmind-ledger-1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    signature BLOB NOT NULL,
    provider_signature BLOB
);
CREATE TABLE IF NOT EXISTS checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
"""

_IN_CHUNK = 500  # SQLite host parameters per IN (...) query, well under its limit

ENTRY_COLUMNS = "idx, time_ms, kind, payload, prev_hash, hash, signature, provider_signature"

Row = tuple[int, int, str, bytes, bytes, bytes, bytes, "bytes | None"]


def entry_from_row(row: Row) -> Entry:
    return Entry(row[0], row[1], row[2], bytes(row[3]), bytes(row[4]), bytes(row[5]),
                 bytes(row[6]), bytes(row[7]) if row[7] is not None else None)


def entry_row(entry: Entry) -> Row:
    return (entry.index, entry.time_ms, entry.kind, entry.payload_json, entry.prev_hash,
            entry.hash, entry.signature, entry.provider_signature)


def connect_readonly(path: str | Path) -> sqlite3.Connection:
    """Open an existing ledger file for reading only (verify, show, proofs)."""
    if not Path(path).is_file():
        raise NotFound(f"no ledger file at {path}")
    conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("SELECT 1 FROM entries LIMIT 1").fetchall()
    except sqlite3.DatabaseError as err:
        conn.close()
        raise InvalidInput(f"{path} is not a MutualMind ledger: {err}") from None
    return conn


class LedgerStore:
    """The one writer's handle on a ledger file."""

    def __init__(self, path: str | Path, *, create: bool) -> None:
        self.path = Path(path)
        if create and self.path.exists():
            raise InvalidInput(f"{path} already exists; open it instead of creating it")
        if not create and not self.path.is_file():
            raise NotFound(f"no ledger file at {path}")
        self.conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            if create:
                self.conn.executescript(_SCHEMA)
                self.conn.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            version = self.conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.DatabaseError as err:
            self.conn.close()
            raise InvalidInput(f"{path} is not a MutualMind ledger: {err}") from None
        if not version or version[0] != SCHEMA_VERSION:
            self.conn.close()
            raise InvalidInput(f"{path} is not a {SCHEMA_VERSION} ledger")

    def close(self) -> None:
        self.conn.close()

    def rows(self, start: int = 0, kind: str | None = None) -> Iterator[Row]:
        """Stored rows from index `start` on, in order; only one kind when given."""
        if kind is None:
            return self.conn.execute(
                f"SELECT {ENTRY_COLUMNS} FROM entries WHERE idx >= ? ORDER BY idx", (start,)
            )
        return self.conn.execute(
            f"SELECT {ENTRY_COLUMNS} FROM entries WHERE idx >= ? AND kind = ? ORDER BY idx",
            (start, kind),
        )

    def rows_at(self, indexes: list[int]) -> list[Row]:
        """The stored rows at these indexes (ascending, existing), by primary key."""
        found: list[Row] = []
        for offset in range(0, len(indexes), _IN_CHUNK):
            chunk = indexes[offset : offset + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            found += self.conn.execute(
                f"SELECT {ENTRY_COLUMNS} FROM entries WHERE idx IN ({marks}) ORDER BY idx", chunk
            ).fetchall()
        if len(found) != len(indexes):
            raise IntegrityError(f"{self.path} lacks entries its index names; reopen the ledger")
        return found

    def checkpoints(self) -> list[tuple[int, str]]:
        return self.conn.execute("SELECT size, note FROM checkpoints ORDER BY size").fetchall()

    def checkpoint_at(self, size: int) -> str | None:
        row = self.conn.execute("SELECT note FROM checkpoints WHERE size = ?", (size,)).fetchone()
        return str(row[0]) if row else None

    def write(self, expected_size: int, rows: Iterable[Row], checkpoints: list[tuple[int, str]]) -> None:
        """Insert `rows` and `checkpoints` in one transaction, or nothing at all."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            top = conn.execute("SELECT max(idx) FROM entries").fetchone()[0]
            if (top + 1 if top is not None else 0) != expected_size:
                raise IntegrityError(
                    f"{self.path} changed under this writer (holds {top} as last index, "
                    f"expected {expected_size - 1}); reopen the ledger"
                )
            conn.executemany(f"INSERT INTO entries ({ENTRY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", rows)
            if checkpoints:
                conn.executemany("INSERT OR REPLACE INTO checkpoints VALUES (?, ?)", checkpoints)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def add_checkpoint(self, size: int, note: str) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?)", (size, note))


def read_recent(path: str | Path, limit: int, kind: str | None = None, party: str | None = None) -> list[Entry]:
    """The newest `limit` entries (oldest first), read without replaying the ledger.

    For `ledger show`: it must work on a ledger that fails verification too, which is
    exactly when someone wants to look at it.
    """
    conn = connect_readonly(path)
    try:
        query = f"SELECT {ENTRY_COLUMNS} FROM entries"
        params: tuple[object, ...] = ()
        if kind is not None:
            query, params = query + " WHERE kind = ?", (kind,)
        found: list[Entry] = []
        for row in conn.execute(query + " ORDER BY idx DESC", params):
            try:
                entry = entry_from_row(row)
                if party is not None and party not in parties_of(entry.kind, entry.payload):
                    continue
            except (ValueError, TypeError):
                continue  # unreadable payload: `verify` reports it
            found.append(entry)
            if len(found) >= limit:
                break
    finally:
        conn.close()
    found.reverse()
    return found
