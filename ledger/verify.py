"""Offline verification of a whole ledger file: every hash, signature, link and rule.

What an auditor runs with the file and nothing else (optionally a verifier key or a
checkpoint it trusts from elsewhere). Worker processes check hashes and signatures over
slices of the file (`signature_check.py`); meanwhile this process walks the entries in
order, checks that each links to the one before, replays the rules, rebuilds the Merkle
tree and compares every stored checkpoint with it. The report names the first bad entry
and what is wrong with it; a ledger shorter than a signed checkpoint says so (truncation).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.checkpoint import open_checkpoint
from ledger.entries import GENESIS_PREV_HASH
from ledger.merkle import leaf_hash
from ledger.merkle_tree import MerkleTree
from ledger.signature_check import Failure, KeyRing, check_range, failure
from ledger.signed_note import NoteError, NoteVerifier, key_id, parse_verifier_key
from ledger.state import LedgerState
from ledger.store import connect_readonly
from mutualmind.errors import InvalidInput, MutualMindError
from mutualmind.vocabulary.payloads import check_payload_size
from mutualmind.vocabulary.signing_keys import load_public_key
from mutualmind.vocabulary.states import EntryKind

PARALLEL_MIN_ENTRIES = 4000


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of `verify_ledger`; `ok` only if nothing at all is wrong."""

    ok: bool
    entries: int
    tree_size: int
    root: bytes
    total_supply: int
    first_bad_index: int | None = None
    problem: str | None = None
    error: str | None = None
    checkpoints: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "entries": self.entries, "tree_size": self.tree_size,
            "root": self.root.hex(), "total_supply": self.total_supply,
            "checkpoints_checked": self.checkpoints, "first_bad_index": self.first_bad_index,
            "problem": self.problem, "error": self.error,
        }


def _collect_keys(conn: sqlite3.Connection) -> KeyRing:
    """Public keys from the registration entries (first one wins; replay judges order)."""
    coordinator = b""
    providers: dict[str, bytes] = {}
    nodes: dict[int, bytes] = {}
    rows = conn.execute(
        "SELECT idx, kind, payload FROM entries WHERE kind IN "
        "(CAST('genesis' AS BLOB), CAST('provider_registered' AS BLOB), CAST('node_registered' AS BLOB), "
        "'genesis', 'provider_registered', 'node_registered') ORDER BY idx"
    )
    for index, kind, payload_json in rows:
        kind = kind.decode("utf-8", "replace") if isinstance(kind, bytes) else kind
        try:
            payload = json.loads(payload_json)
            if kind == EntryKind.GENESIS and index == 0:
                coordinator = bytes.fromhex(payload["coordinator_key"])
            elif kind == EntryKind.PROVIDER_REGISTERED:
                providers.setdefault(payload["provider_id"], bytes.fromhex(payload["public_key"]))
            elif kind == EntryKind.NODE_REGISTERED:
                nodes.setdefault(payload["node_index"], bytes.fromhex(payload["signing_key"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # the entry's own checks report it
    return KeyRing(coordinator, providers, nodes)


def _ranges(count_: int, workers: int) -> list[tuple[int, int]]:
    """Index ranges for the workers; the last one is open-ended so no stored row is skipped."""
    chunk = max(1000, -(-count_ // (workers * 4)))
    ranges = [(lo, lo + chunk) for lo in range(0, count_, chunk)] or [(0, 1)]
    ranges[-1] = (ranges[-1][0], 2**63 - 1)
    return ranges


class _Replay:
    """The in-order pass: chain links, rules, Merkle tree, checkpoints."""

    def __init__(self, checkpoints: list[tuple[int, str]], verifier: NoteVerifier | None) -> None:
        self.state = LedgerState()
        self.tree = MerkleTree()
        self.pending = sorted(checkpoints, key=lambda item: item[0])
        self.verifier = verifier
        self.checked = 0

    def run(self, conn: sqlite3.Connection) -> Failure | None:
        expected, prev, last_time = 0, GENESIS_PREV_HASH, 0
        state, tree, pending = self.state, self.tree, self.pending
        while pending and pending[0][0] <= 0:
            found = self._check_checkpoint(*pending.pop(0))
            if found is not None:
                return found
        for index, time_ms, kind, payload_json, prev_hash, stored_hash in conn.execute(
            "SELECT idx, time_ms, kind, payload, prev_hash, hash FROM entries ORDER BY idx"
        ):
            if index != expected:
                return failure(expected, "missing entry", f"entry {expected} is missing (next stored index is {index})")
            if prev_hash != prev:
                return failure(index, "chain link", "prev_hash does not equal the previous entry's hash")
            if type(time_ms) is not int or time_ms < last_time:
                return failure(index, "rule broken on replay", "entry is dated before the entry preceding it")
            last_time = time_ms
            if not (isinstance(kind, bytes) and isinstance(payload_json, bytes) and isinstance(stored_hash, bytes)):
                return failure(index, "hash", "a stored field has the wrong type (edited outside the ledger)")
            try:
                check_payload_size(kind.decode("utf-8"), payload_json)
                state.apply(index, kind.decode("utf-8"), json.loads(payload_json), time_ms)
            except (MutualMindError, ValueError, TypeError, AttributeError, KeyError, RecursionError) as err:
                message = err.message if isinstance(err, MutualMindError) else str(err)
                return failure(index, "rule broken on replay", message)
            if index == 0 and self.verifier is not None:
                if key_id(self.verifier.name, state.coordinator_key or b"") != self.verifier.key_id:
                    return failure(0, "coordinator signature", "genesis names another coordinator key than the trusted one")
            tree.append(leaf_hash(stored_hash))
            prev, expected = stored_hash, expected + 1
            while pending and pending[0][0] == tree.size:
                found = self._check_checkpoint(*pending.pop(0))
                if found is not None:
                    return found
        if pending:
            size = pending[-1][0]
            return failure(tree.size, "missing entry",
                           f"a checkpoint is signed at size {size} but the ledger holds only {tree.size} entries (truncated)")
        return None

    def _check_checkpoint(self, size: int, note: str) -> Failure | None:
        at = max(size - 1, 0)
        try:
            verifier = self.verifier or parse_verifier_key(_vkey(self.state))
            head = open_checkpoint(note, verifier, origin=self.state.origin or None)
        except (NoteError, InvalidInput) as err:
            return failure(at, "checkpoint", f"checkpoint at size {size}: {err.message}")
        if head.size != size or head.root != self.tree.root(size):
            return failure(at, "checkpoint", f"checkpoint at size {size} does not match the entries' Merkle root")
        self.checked += 1
        return None


def _vkey(state: LedgerState) -> str:
    from ledger.signed_note import verifier_key_string

    return verifier_key_string(state.origin, load_public_key(state.coordinator_key or b""))


def verify_ledger(
    path: str | Path, *, vkey: str | None = None, trusted_checkpoints: list[str] | None = None,
    workers: int | None = None,
) -> VerifyReport:
    """Check a ledger file completely; never raises for what it finds, only for I/O.

    `vkey` (a note verifier key string) pins the coordinator key instead of trusting the
    genesis entry; `trusted_checkpoints` are signed tree heads obtained earlier, which
    the file must still match (this is how truncation of the tail is caught).
    """
    conn = connect_readonly(path)
    conn.text_factory = bytes
    try:
        verifier = parse_verifier_key(vkey) if vkey else None
        checkpoints = [(size, note.decode() if isinstance(note, bytes) else note)
                       for size, note in conn.execute("SELECT size, note FROM checkpoints")]
        checkpoints += [(_peek_size(note), note) for note in trusted_checkpoints or []]
        keys = _collect_keys(conn)
        count_ = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        workers = workers or os.cpu_count() or 1
        futures: list[Future[Failure | None]] = []
        pool = None
        if workers > 1 and count_ >= PARALLEL_MIN_ENTRIES:
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            futures = [pool.submit(check_range, str(path), lo, hi, keys) for lo, hi in _ranges(count_, workers)]
        replay = _Replay(checkpoints, verifier)
        found = [replay.run(conn)]
        if pool is None:
            found.append(check_range(str(path), 0, 2**63 - 1, keys))
        else:
            for future, (lo, hi) in zip(futures, _ranges(count_, workers)):
                try:
                    found.append(future.result())
                except BrokenProcessPool:  # e.g. a worker killed by the OOM killer: redo here
                    found.append(check_range(str(path), lo, hi, keys))
            pool.shutdown()
    finally:
        conn.close()
    problems = [f for f in found if f is not None]
    state, tree = replay.state, replay.tree
    if not problems:
        return VerifyReport(True, state.size, tree.size, tree.root(), state.totals["minted"],
                            checkpoints=replay.checked)
    first = min(problems)
    return VerifyReport(False, state.size, tree.size, tree.root(), state.totals["minted"],
                        first.index, first.problem, first.message, replay.checked)


def _peek_size(note: str) -> int:
    lines = note.split("\n")
    if len(lines) < 3 or not lines[1].isdigit():
        raise InvalidInput("a trusted checkpoint must be a tlog-checkpoint note (origin, size, root)")
    return int(lines[1])
