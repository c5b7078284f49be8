"""`mutualmind provider ... --data-dir DIR`: a provider on a local cluster needs no addresses."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mpcnode.share_store import ShareStore
from mutualmind.cluster.local import LocalCluster

ROOT = Path(__file__).resolve().parents[2]


def mutualmind(*args: str, env_data_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = dict(os.environ)
    env.pop("MUTUALMIND_DATA_DIR", None)
    if env_data_dir is not None:
        env["MUTUALMIND_DATA_DIR"] = str(env_data_dir)
    return subprocess.run([sys.executable, "-m", "mutualmind", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env=env)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("provider-local") / "c", nodes=3) as running:
        yield running


def test_register_share_stake_with_only_the_data_dir(cluster: LocalCluster, tmp_path: Path) -> None:
    data_dir = str(cluster.data_dir)
    key = tmp_path / "clinic.key"
    assert mutualmind("provider", "keygen", "--key", str(key), "--id", "clinic").returncode == 0
    run = mutualmind("provider", "register", "--key", str(key), "--data-dir", data_dir)
    assert run.returncode == 0, run.stderr
    mint = mutualmind("admin", "mint", "--data-dir", data_dir, "--to", "clinic", "--amount", "500")
    assert mint.returncode == 0, mint.stderr
    # the environment variable works like --data-dir (as for the admin commands)
    share = mutualmind("provider", "share", "--key", str(key), "--dataset-id", "clinic-1",
                       "--sklearn", "iris", "--labels", "classes:3", env_data_dir=cluster.data_dir)
    assert share.returncode == 0, share.stderr
    assert json.loads(share.stdout.strip().splitlines()[-1])["rows"] == 150
    for i in range(3):   # every node of the cluster got its share
        assert ShareStore(cluster.data_dir / f"node{i}").describe("clinic-1").rows == 150
    stake = mutualmind("provider", "stake", "--key", str(key), "--data-dir", data_dir,
                       "--dataset-id", "clinic-1", "--amount", "200")
    assert stake.returncode == 0, stake.stderr
    balance = json.loads(mutualmind("provider", "balance", "--key", str(key),
                                    "--data-dir", data_dir).stdout)
    assert balance["balance"] == 300 and balance["stakes"] == {"clinic-1": 200}


def test_without_data_dir_or_addresses_it_says_what_is_missing(tmp_path: Path) -> None:
    key = tmp_path / "k.key"
    assert mutualmind("provider", "keygen", "--key", str(key), "--id", "k").returncode == 0
    run = mutualmind("provider", "balance", "--key", str(key))
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "mutualmind: error: --coordinator is required (or --data-dir DIR of a local cluster)"]
    missing = mutualmind("provider", "balance", "--key", str(key), "--data-dir", str(tmp_path / "none"))
    assert missing.returncode == 3 and "no local cluster" in missing.stderr
