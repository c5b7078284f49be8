"""Nonces of answered signed fetches (model shares, prediction shares), on disk: a replay stays a replay after a restart.

A signed model-share request is fresh for `MAX_SKEW_S` either side of the node's clock;
within that window its nonce is what tells a first request from a replay. Kept only in
memory, the record died with the process, and a request answered before a restart could
be replayed after it (issue 11). So each accepted nonce is written to a small SQLite
file in the node's data dir and committed with synchronous=FULL (fsynced) *before* the
share is answered; a crash after the commit costs the sponsor one request, never a
replay. Rows whose request can no longer be fresh are pruned as new ones arrive, so the
file stays as small as the window's traffic.

Invariants: a nonce is claimed at most once while it could be fresh; a claim either is
on disk or raised; the store never holds more than `limit` live nonces (beyond that the
node refuses requests for a while instead of growing without bound).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

from mutualmind.errors import InvalidInput, PermissionDenied, RuleViolation, Unavailable

NONCE_FILE = "model_release_nonces.sqlite"
MAX_REMEMBERED_NONCES = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nonces (
    nonce TEXT PRIMARY KEY,
    forget_after REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nonces_forget_after ON nonces (forget_after);
"""


_NONCE = re.compile(r"[0-9a-f]{32,128}")


def check_fresh(nonce: str, issued_at: float, now: float, max_skew_s: float) -> None:
    """A signed request's nonce is well formed and it was issued within `max_skew_s` of
    `now`: InvalidInput or PermissionDenied otherwise (model-share and prediction fetches
    alike); `NonceStore.claim` then makes it single-use."""
    if not _NONCE.fullmatch(nonce):
        raise InvalidInput("the nonce must be 32-128 lowercase hex characters from a secure "
                           "random source (secrets.token_hex(16))")
    if abs(now - issued_at) > max_skew_s:
        raise PermissionDenied(
            f"the request was issued at {issued_at}, {now - issued_at:+.0f} s from "
            f"this node's clock (allowed: {max_skew_s} s); check the clock and sign a new request")


class NonceStore:
    """Claimed nonces with the time after which each stops mattering (thread-safe)."""

    def __init__(self, path: Path, *, limit: int = MAX_REMEMBERED_NONCES) -> None:
        self.path = Path(path)
        self._limit = limit
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False,
                                         isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as err:
            raise InvalidInput(f"cannot open the nonce store {self.path}: {err}; check the "
                               "node's --data-dir is a writable folder") from None

    def claim(self, nonce: str, forget_after: float, now: float, *,
              what: str = "model-share request") -> None:
        """Record `nonce` durably; PermissionDenied if it was claimed and could still be fresh.

        `what` names the request in the refusals, so a replayed prediction fetch is not
        told it was a model-share request (one store serves both: a nonce is single-use)."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.execute("DELETE FROM nonces WHERE forget_after <= ?", (now,))
                    if self._conn.execute("SELECT 1 FROM nonces WHERE nonce = ?",
                                          (nonce,)).fetchone() is not None:
                        raise sqlite3.IntegrityError("nonce already claimed")
                    (count,) = self._conn.execute("SELECT count(*) FROM nonces").fetchone()
                    if count >= self._limit:
                        raise RuleViolation("too_many_requests", f"this node is answering too "
                                            f"many {what}s; retry in a few minutes")
                    self._conn.execute("INSERT INTO nonces (nonce, forget_after) VALUES (?, ?)",
                                       (nonce, forget_after))
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.IntegrityError:
                raise PermissionDenied(
                    f"this {what} was already answered (its nonce was used); "
                    "sign a new request with a fresh nonce") from None
            except sqlite3.Error as err:
                raise Unavailable(f"this node could not record the request's nonce ({err}); "
                                  "nothing was released, retry with a new request") from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
