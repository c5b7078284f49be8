"""Ledger benchmark: signed appends/s, fully verified entries/s, signature checks/s, proof ms.

    python bench/ledger.py --json

Appends 100k entries of a realistic mix (registrations, mints, transfers, dataset
registrations, stakes, whole rounds with attestations, slashes and payouts) in group
commits, each entry individually validated, hashed, chained and signed; the provider and
node signatures are made beforehand, as clients would. Then runs the full `verify_ledger`
(every hash, every coordinator/provider/attestation/checkpoint signature, the replay of
every rule), and times inclusion proof build + check in a tree of 1M leaves.

    python bench/ledger.py --lookup-only --lookup-entries 1000000 --json

Builds a ledger of that many entries from the same workload (streamed, in group commits;
`lookup_build_s`), reopens it (`lookup_reopen_s`: replay, tree and read indexes), then
times each indexed query of the read API (median and slowest call, in ms) on random
rounds, datasets and providers, next to one old-style full scan for a round.
Not a test: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger import Ledger, verify_ledger  # noqa: E402
from ledger.merkle import leaf_hash, verify_inclusion  # noqa: E402
from ledger.merkle_tree import MerkleTree  # noqa: E402
from ledger.workload import realistic_mix  # noqa: E402
from mutualmind.vocabulary.signing_keys import VERIFY_BACKEND, generate_signing_key  # noqa: E402


def _cpu() -> float:
    """CPU seconds used by this process and its finished children (the verify workers):
    on a shared machine this says what the work costs, wall time says what others left."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def bench_ledger(entries: int, batch: int, workers: int | None) -> dict[str, float]:
    requests = list(realistic_mix(entries - 1, providers=200))[: entries - 1]
    signatures = sum(1 for _, _, sig in requests if sig) + sum(
        len(payload["attestations"]) for kind, payload, _ in requests if kind == "round_result"
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        key = generate_signing_key()
        start, cpu = time.perf_counter(), _cpu()
        ledger = Ledger.create(path, key, params={"bench": True})
        for offset in range(0, len(requests), batch):
            ledger.append_many(requests[offset : offset + batch])
        append_s, append_cpu = time.perf_counter() - start, _cpu() - cpu
        size, checkpoints = ledger.size, len(ledger.checkpoints())
        ledger.close()
        start, cpu = time.perf_counter(), _cpu()
        report = verify_ledger(path, workers=workers)
        verify_s, verify_cpu = time.perf_counter() - start, _cpu() - cpu
        if not report.ok:
            raise SystemExit(f"benchmark ledger failed verification: {report.error}")
        db_bytes = path.stat().st_size
    sig_checks = size + signatures + checkpoints
    return {
        "entries": size,
        "batch": batch,
        "append_s": round(append_s, 3),
        "append_per_s": round(size / append_s),
        "append_cpu_s": round(append_cpu, 3),
        "verify_s": round(verify_s, 3),
        "verify_cpu_s": round(verify_cpu, 3),
        "verify_per_s": round(size / verify_s),
        "sig_checks": sig_checks,
        "sig_checks_per_s": round(sig_checks / verify_s),
        "checkpoints": checkpoints,
        "db_mb": round(db_bytes / 1e6, 1),
    }


def bench_proof(leaves: int, trials: int) -> dict[str, float]:
    tree = MerkleTree()
    for i in range(leaves):
        tree.append(leaf_hash(hashlib.sha256(i.to_bytes(8, "big")).digest()))
    root = tree.root()
    rng = random.Random(1)
    indices = [rng.randrange(leaves) for _ in range(trials)]
    start = time.perf_counter()
    for index in indices:
        proof = tree.inclusion_proof(index)
        verify_inclusion(index, leaves, tree.leaf(index), proof, root)
    elapsed = time.perf_counter() - start
    return {"proof_leaves": leaves, "proof_ms": round(elapsed / trials * 1000, 4)}


def bench_lookup(entries: int, batch: int, trials: int) -> dict[str, float]:
    """Build a ledger of `entries`, reopen it, time the read API's queries on it."""
    requests = realistic_mix(entries - 1, providers=200)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "lookup.db"
        start = time.perf_counter()
        with Ledger.create(path, generate_signing_key(), params={"bench": True}) as ledger:
            while ledger.size < entries:
                chunk = list(itertools.islice(requests, min(batch, entries - ledger.size)))
                if not chunk:
                    break
                ledger.append_many(chunk)
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        ledger = Ledger.open(path)
        reopen_s = time.perf_counter() - start
        try:
            result: dict[str, float] = {
                "lookup_entries": ledger.size, "lookup_build_s": round(build_s, 1),
                "lookup_build_per_s": round(ledger.size / build_s),
                "lookup_reopen_s": round(reopen_s, 1)}
            result.update(_time_queries(ledger, trials))
            rng = random.Random(3)
            round_id = rng.choice(list(ledger.state.rounds))
            start = time.perf_counter()
            _scan_round(ledger, round_id)
            result["old_full_scan_round_ms"] = round((time.perf_counter() - start) * 1000, 1)
        finally:
            ledger.close()
    return result


def _time_queries(ledger: Ledger, trials: int) -> dict[str, float]:
    rng = random.Random(2)
    state = ledger.state
    rounds, datasets, providers = list(state.rounds), list(state.datasets), list(state.providers)
    queries: dict[str, Callable[[], object]] = {
        "round_entries": lambda: ledger.round_entries(rng.choice(rounds)),
        "round_opened": lambda: ledger.round_opened(rng.choice(rounds)),
        "dataset_registration": lambda: ledger.dataset_registration(rng.choice(datasets)),
        "dataset_entries": lambda: ledger.dataset_entries(rng.choice(datasets)),
        "provider_registration": lambda: ledger.provider_registration(rng.choice(providers)),
        "provider_datasets": lambda: ledger.provider_datasets(rng.choice(providers)),
        "entries_for_party_100": lambda: ledger.entries_for_party(rng.choice(providers), limit=100),
        "entries_kind_100": lambda: ledger.entries(kind="round_opened", start=rng.randrange(ledger.size),
                                                   limit=100),
    }
    result: dict[str, float] = {}
    for name, query in queries.items():
        times = []
        for _ in range(trials):
            start = time.perf_counter()
            query()
            times.append(time.perf_counter() - start)
        result[f"{name}_ms"] = round(statistics.median(times) * 1000, 4)
        result[f"{name}_max_ms"] = round(max(times) * 1000, 3)
    return result


def _scan_round(ledger: Ledger, round_id: str) -> list[object]:
    """What `admin round show` did before the read API: read every entry, keep the round's."""
    found = []
    for entry in ledger.entries(start=0, limit=None):
        if entry.payload.get("round_id") == round_id:
            found.append(entry)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="entries per group commit")
    parser.add_argument("--workers", type=int, default=None, help="verify processes (default: cores)")
    parser.add_argument("--proof-leaves", type=int, default=1_000_000)
    parser.add_argument("--lookup-entries", type=int, default=100_000,
                        help="size of the ledger the read API's lookups are timed on")
    parser.add_argument("--lookup-trials", type=int, default=500, help="calls per query")
    parser.add_argument("--lookup-only", action="store_true",
                        help="only build the lookup ledger and time lookups")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result: dict[str, object] = {"cpus": os.cpu_count() or 1, "verify_backend": VERIFY_BACKEND,
                                 "load_before": round(os.getloadavg()[0], 2)}
    if not args.lookup_only:
        result.update(bench_ledger(args.entries, args.batch, args.workers))
        result.update(bench_proof(args.proof_leaves, 2000))
    result.update(bench_lookup(args.lookup_entries, args.batch, args.lookup_trials))
    if args.json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name:>18}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
