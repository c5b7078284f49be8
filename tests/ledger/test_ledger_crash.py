"""Crash safety: a writer SIGKILLed at random points leaves only whole, verifiable entries."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger, verify_ledger
from mutualmind.vocabulary.signing_keys import save_private_key

REPO = Path(__file__).resolve().parents[2]

WRITER = r"""
import random, sys
from ledger import Ledger
from mutualmind.vocabulary.signing_keys import load_private_key
from ledger.workload import Market

path, key_path, run = sys.argv[1], sys.argv[2], int(sys.argv[3])
ledger = Ledger.open(path, load_private_key(key_path))
market = Market()
a, b = f"a{run}", f"b{run}"
ledger.append_many([market.register_provider(a), market.register_provider(b), market.mint(a, 10**9)])
print("ready", ledger.size, flush=True)
rng = random.Random(run)
while True:
    batch = [market.transfer(a, b, rng.randint(1, 9)) for _ in range(rng.randint(1, 60))]
    if rng.random() < 0.3:
        ledger.append(*batch[0])
    else:
        ledger.append_many(batch)
    print("committed", ledger.size, flush=True)
"""


def _run_and_kill(path: Path, key_path: Path, run: int, rng: random.Random) -> int:
    """Start a writer, SIGKILL it at a random moment; return the last size it reported."""
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(key_path), str(run)],
        stdout=subprocess.PIPE, text=True, cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)},
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.startswith("ready"), line
    time.sleep(rng.uniform(0.05, 0.5))
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    acknowledged = int(line.split()[1])
    for line in child.stdout:
        # the kill can cut the last line mid-write: only a whole line acknowledges a size
        fields = line.split()
        if line.endswith("\n") and len(fields) == 2 and fields[1].isdigit():
            acknowledged = int(fields[1])
    child.stdout.close()
    return acknowledged


def test_killed_writer_leaves_a_verifiable_ledger(tmp_path: Path, coordinator_key: Ed25519PrivateKey) -> None:
    path, key_path = tmp_path / "ledger.db", tmp_path / "coordinator.pem"
    save_private_key(coordinator_key, key_path)
    Ledger.create(path, coordinator_key, params={}).close()
    rng = random.Random(2024)
    sizes = []
    for run in range(5):
        acknowledged = _run_and_kill(path, key_path, run, rng)
        report = verify_ledger(path)
        assert report.ok, f"run {run}: {report.problem} at {report.first_bad_index}: {report.error}"
        # every acknowledged commit survived; at most the batch in flight is lost, never half of it
        assert report.entries >= acknowledged
        ledger = Ledger.open(path, coordinator_key)  # the writer lock died with the process
        try:
            assert ledger.size == report.entries
            assert ledger.state.supply_holds()
        finally:
            ledger.close()
        sizes.append(report.entries)
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0] > 1  # the writers did make progress
