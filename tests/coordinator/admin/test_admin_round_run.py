"""`admin round run` end to end: a real round on a real local cluster with real CrypTen.

Dealer, coordinator and three nodes run as processes; providers share and stake through
their client API; the sponsor opens the round with `admin round open`; `admin round run`
streams the coordinator's progress (checked as JSON lines, the settled round last) until the round is settled;
`round show`, `round report --png` and `ledger verify` then read the closed round.
One MPC job (worker processes importing torch and CrypTen) takes ~20 s on 2 cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from market_setup import (  # noqa: E402
    breast_cancer_tables,
    provider_identity,
    register_and_share,
    stake,
)

from mutualmind.cluster.local import LocalCluster  # noqa: E402

pytestmark = pytest.mark.slow


def admin(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mutualmind", "admin", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_round_run_streams_progress_and_settles(tmp_path: Path) -> None:
    with LocalCluster(tmp_path / "cluster", nodes=3) as cluster:
        state = cluster.state
        data = str(state.data_dir)
        who = {n: provider_identity(tmp_path, n)
               for n in ("hospital-a", "hospital-b", "hospital-c", "sponsor")}
        tables = breast_cancer_tables(4, rows_each=50)
        register_and_share(state, who["hospital-a"], "a-1", tables[0])
        register_and_share(state, who["hospital-b"], "b-1", tables[1])
        register_and_share(state, who["hospital-c"], "c-1", tables[2])
        register_and_share(state, who["sponsor"], "val-1", tables[3], purpose="validation")
        for name in who:
            assert admin("mint", "--data-dir", data, "--to", name, "--amount", "1000").returncode == 0
        for name, dataset in (("hospital-a", "a-1"), ("hospital-b", "b-1"), ("hospital-c", "c-1")):
            stake(state, who[name], dataset, 100)
        opened = admin("round", "open", "--data-dir", data, "--round-id", "r1",
                       "--sponsor-key", str(who["sponsor"].key_file), "--pool", "500",
                       "--validation-dataset", "val-1", "--dataset", "a-1", "--dataset", "b-1",
                       "--dataset", "c-1", "--model-spec", '{"kind": "logistic", "epochs": 3, "lr": 1.0}')
        assert opened.returncode == 0, opened.stderr

        run = admin("round", "run", "r1", "--data-dir", data, "--deadline", "240", "--json")
        assert run.returncode == 0, run.stderr
        documents = [json.loads(line) for line in run.stdout.splitlines()]   # JSON lines only
        events, final = documents[:-1], documents[-1]
        assert all(a != b for a, b in zip(events, events[1:]))    # one line per change
        stages = [e["stage"] for e in events]
        assert stages[0] == "starting" and stages[-1] == "done", stages
        assert "attesting" in stages and "settling" in stages
        fractions = [e["fraction"] for e in events]
        assert all(b >= a - 1e-9 for a, b in zip(fractions, fractions[1:])), fractions
        assert fractions[-1] == 1.0
        assert final["status"] == "closed"
        assert len(final["metrics_micro"]) == 4
        paid = sum(p["payout"] for p in final["participants"])
        slashed = sum(p["slashed"] for p in final["participants"])
        assert paid + final["refund_to_sponsor"] == 500 + slashed   # the pool is paid out exactly

        shown = admin("round", "show", "r1", "--data-dir", data, "--json")
        assert json.loads(shown.stdout)["participants"] == final["participants"]
        png = tmp_path / "r1.png"
        assert admin("round", "report", "r1", "--data-dir", data, "--png", str(png)).returncode == 0
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        verified = admin("ledger", "verify", "--data-dir", data, "--json")
        report = json.loads(verified.stdout)
        assert verified.returncode == 0 and report["ok"] and report["total_supply"] == 4000
        again = admin("round", "run", "r1", "--data-dir", data)
        assert again.returncode == 2 and "closed" in again.stderr
