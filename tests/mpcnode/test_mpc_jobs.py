"""MPC jobs end to end: three node job runners, the dealer's TTP process, real CrypTen.

Breast cancer is split across four providers (the second flips half its labels) and
secret-shared into three real node share stores. Each node's `JobRunner` starts a real
worker process; the real dealer server (mutual TLS, driven with the coordinator's
certificate) starts the real TTP process; they meet on loopback over the gRPC data plane
(mutual TLS). The MPC contributions must agree with a plaintext leave-one-out that
retrains without each provider. A job asking for gloo is refused by node and dealer.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from coordinator.dealer_client import DealerClient
from mpcnode.dealer_server import start_dealer
from mpcnode.jobs import JobRequest, JobRunner
from mpcnode.worker.reference import plaintext_loo
from mutualmind.errors import AlreadyExists, InvalidInput, NotFound
from mutualmind.transport import channel_credentials, open_channel
from mutualmind.vocabulary.attestation import attestation_message
from mutualmind.vocabulary.model_file import predict, read_share_file, reconstruct
from mutualmind.vocabulary.model_spec import (
    contributions_micro,
    parse_model_spec,
    to_micro,
)
from mutualmind.vocabulary.signing_keys import generate_signing_key, verify_signature
from mutualmind.vocabulary.states import JobState
from tests.certs import ClusterCertsFactory
from tests.mpcnode.worker.cluster import free_port, job_plane, store_dataset

NODES = 3
PROVIDERS = 4
MODEL = {"kind": "logistic", "epochs": 8, "lr": 1.0}
# fixed-point noise bound on each metric (log-loss), measured ~1e-3 on this data
TOLERANCE = 0.005


class Cluster:
    def __init__(self, root: Path, certs: Path) -> None:
        x, y = load_breast_cancer(return_X_y=True)
        tx, vx, ty, vy = train_test_split(x, y.astype(float), test_size=0.2, random_state=0, stratify=y)
        parts = np.array_split(np.arange(len(tx)), PROVIDERS)
        ty = ty.copy()
        noisy = parts[1]
        flip = noisy[np.random.default_rng(0).random(len(noisy)) < 0.5]
        ty[flip] = 1 - ty[flip]
        self.data = (tx, ty, vx, vy, [len(p) for p in parts])
        self.dirs = [root / f"node{i}" for i in range(NODES)]
        self.datasets = [f"provider{i}" for i in range(PROVIDERS)]
        for name, rows in zip(self.datasets, parts):
            store_dataset(self.dirs, name, tx[rows], ty[rows])
        store_dataset(self.dirs, "validation", vx, vy, purpose="validation")
        self.keys = [generate_signing_key() for _ in range(NODES)]
        self.runners = [JobRunner(d, k, certs_dir=certs) for d, k in zip(self.dirs, self.keys)]
        self._planes: dict[str, dict[str, object]] = {}
        self.dealer_dir = root / "dealer"
        self.dealer_server = start_dealer(certs, "127.0.0.1:0", self.dealer_dir)
        self.channel = open_channel(
            f"127.0.0.1:{self.dealer_server.port}", channel_credentials(certs, "coordinator"), server_name="dealer"
        )
        self.dealer = DealerClient(self.channel)

    def request(self, job_id: str, rank: int, port: int, deadline: float = 120.0, **changes: object) -> JobRequest:
        fields = dict(
            job_id=job_id,
            round_id="round-7",
            world_size=NODES,
            rank=rank,
            master_addr="127.0.0.1",
            master_port=port,
            dataset_ids=tuple(self.datasets),
            validation_dataset_id="validation",
            model_spec_json=parse_model_spec(MODEL).to_json(),
            job_digest=bytes(range(32)),
            deadline_s=deadline,
            **self.plane_fields(job_id),
        )
        fields.update(changes)
        return JobRequest(**fields)  # type: ignore[arg-type]

    def plane_fields(self, job_id: str) -> dict[str, object]:
        """The job's data plane (issue 12: gRPC, mTLS), the same for every rank and the dealer."""
        return self._planes.setdefault(job_id, job_plane(NODES))

    def start(self, job_id: str, deadline: float = 120.0, ranks: range = range(NODES)) -> int:
        port = free_port()
        for rank in ranks:
            self.runners[rank].start(self.request(job_id, rank, port, deadline))
        session = self.dealer.start(job_id, world_size=NODES, master_addr="127.0.0.1", master_port=port,
                                    deadline_s=deadline, **self.plane_fields(job_id))  # type: ignore[arg-type]
        assert session.state == "running"
        return port

    def wait_dealer(self, job_id: str, timeout: float) -> str:
        end = time.monotonic() + timeout
        while (state := self.dealer.status(job_id).state) == "running" and time.monotonic() < end:
            time.sleep(0.1)
        return state

    def close(self) -> None:
        for runner in self.runners:
            runner.close()
        self.channel.close()
        self.dealer_server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, cluster_certs: ClusterCertsFactory):
    built = Cluster(tmp_path_factory.mktemp("mpc"), cluster_certs(NODES).folder)
    yield built
    built.close()


def test_loo_contributions_agree_with_plaintext_retraining(cluster: Cluster) -> None:
    cluster.start("job-loo")
    statuses = [runner.wait("job-loo", timeout=150) for runner in cluster.runners]
    assert [s.state for s in statuses] == [JobState.DONE] * NODES, [s.message for s in statuses]
    assert cluster.wait_dealer("job-loo", timeout=30) == "done"
    results = [s.result for s in statuses]
    assert all(r is not None for r in results)

    # every node revealed and signed the same values
    micro = results[0].metrics_micro
    assert all(r.metrics_micro == micro for r in results)
    # ... and the copy counts (issue 13): one count and sample size per dataset, signed too
    copies = results[0].copies
    assert copies is not None and all(r.copies == copies for r in results)
    assert len(copies["counts"]) == PROVIDERS and copies["samples"][0] == 0
    payload = attestation_message("round-7", bytes(range(32)).hex(), micro, copies)
    for result, key in zip(results, cluster.keys):
        assert result.attestation_payload == payload
        assert verify_signature(key.public_key(), payload, result.attestation)
    assert not verify_signature(cluster.keys[0].public_key(), payload, results[1].attestation)

    spec = parse_model_spec(MODEL)
    mpc = contributions_micro(results[0].metrics_micro, spec.metric)
    plain = contributions_micro([to_micro(m) for m in plaintext_loo(spec, *cluster.data)], spec.metric)
    assert len(mpc) == PROVIDERS
    np.testing.assert_allclose(results[0].metrics, plaintext_loo(spec, *cluster.data), atol=TOLERANCE)
    assert np.sign(mpc).tolist() == np.sign(plain).tolist()
    assert np.argsort(mpc).tolist() == np.argsort(plain).tolist()
    assert mpc[1] < 0 and mpc[1] == min(mpc), "the provider with flipped labels must be valued lowest"
    assert results[0].accuracy_full is not None and results[0].accuracy_full > 0.9

    # training communication is counted; weights stay as this node's shares
    assert results[0].comm["rounds_per_step"] > 0 and results[0].comm["bytes"] > 0
    weights = cluster.runners[0].weights_path("job-loo")
    # weight [30, 1], bias [1, 1], normalisation mean, scale and the public column
    # exponents [1, 30] each, int64
    assert weights.stat().st_size == (30 + 1 + 30 + 30 + 30) * 8
    shares = [read_share_file(Path(r.weights_path), r.weights_manifest) for r in results]
    assert not np.array_equal(shares[0]["weight"], shares[1]["weight"])
    # the sponsor, with every node's share, gets a model that works on raw rows
    model = reconstruct(shares)
    tx, ty, vx, vy, _ = cluster.data
    accuracy = float((predict(model, spec, vx) == vy).mean())
    assert abs(accuracy - results[0].accuracy_full) <= 0.02
    with pytest.raises(InvalidInput):
        reconstruct(shares[:1])

    # after a node restart (a new runner on the same data dir) the job and its model
    # shares are still there, with the same signed values
    restarted = JobRunner(cluster.dirs[2], cluster.keys[2])
    again = restarted.status("job-loo")
    assert again.state == JobState.DONE and again.result is not None
    assert again.result.metrics_micro == micro and again.result.attestation == results[2].attestation
    data, manifest = restarted.model_share("job-loo")
    assert data == Path(results[2].weights_path).read_bytes() and manifest == results[2].weights_manifest
    with pytest.raises(AlreadyExists):
        cluster.runners[0].start(cluster.request("job-loo", 0, free_port()))


def test_a_killed_worker_fails_the_job_on_every_node_within_its_deadline(cluster: Cluster) -> None:
    deadline = 60.0
    started = time.monotonic()
    cluster.start("job-kill", deadline=deadline)
    while cluster.runners[1].status("job-kill").progress == 0.0 and time.monotonic() - started < 60:
        time.sleep(0.2)
    assert cluster.runners[1].cancel("job-kill").state == JobState.CANCELLED  # SIGKILL to its process group
    others = [cluster.runners[r].wait("job-kill", timeout=deadline + 10) for r in (0, 2)]
    elapsed = time.monotonic() - started
    assert [s.state for s in others] == [JobState.FAILED, JobState.FAILED]
    assert all(s.result is None for s in others)
    assert elapsed < deadline + 5
    # a restarted node reports the job as failed, not as running forever
    restarted = JobRunner(cluster.dirs[0], cluster.keys[0]).status("job-kill")
    assert restarted.state == JobState.FAILED and restarted.result is None
    assert cluster.dealer.stop("job-kill").state in ("cancelled", "done", "failed")


def test_a_missing_peer_fails_the_job_at_its_deadline(cluster: Cluster) -> None:
    port = free_port()
    started = time.monotonic()
    cluster.runners[0].start(cluster.request("job-alone", 0, port, deadline=3.0))
    status = cluster.runners[0].wait("job-alone", timeout=30)
    assert status.state == JobState.FAILED and status.error_code == "deadline"
    assert "deadline of 3 s" in status.message
    assert 2.5 < time.monotonic() - started < 15


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"job_id": "../escape"}, "job id"),
        ({"rank": 3}, "rank"),
        ({"master_port": 0}, "master_port"),
        ({"deadline_s": 0.0}, "deadline"),
        ({"job_digest": b"short"}, "32-byte"),
        ({"model_spec_json": '{"kind": "forest"}'}, "not supported"),
        ({"dataset_ids": ("provider0", "provider0")}, "repeats"),
        ({"validation_dataset_id": "provider0"}, "also a training"),
        ({"master_addr": "bad host!"}, "master_addr"),
    ],
)
def test_bad_requests_are_refused_and_leave_nothing(cluster: Cluster, change: dict, fragment: str) -> None:
    runner = cluster.runners[0]
    before = sorted(p.name for p in runner.jobs_dir.iterdir())
    with pytest.raises(InvalidInput, match=fragment):
        runner.start(dataclasses.replace(cluster.request("job-bad", 0, free_port()), **change))
    assert sorted(p.name for p in runner.jobs_dir.iterdir()) == before
    with pytest.raises(NotFound):
        runner.status("job-bad")


def test_a_job_on_gloo_is_refused_by_node_and_dealer_and_leaves_nothing(cluster: Cluster) -> None:
    """gloo is a benchmark baseline, never a cluster's plane: a node and the dealer
    (over its mutual-TLS port, as the coordinator drives it) refuse such a job with the
    reason, and neither a job folder, a TTP log nor a session is left."""
    runner = cluster.runners[0]
    jobs_before = sorted(p.name for p in runner.jobs_dir.iterdir())
    dealer_before = sorted(p.name for p in cluster.dealer_dir.iterdir())
    gloo = {"plane": "gloo", "plane_addresses": (), "plane_members": ()}
    refused = r"data plane 'gloo' is refused: cluster jobs run only on the gRPC data plane"
    with pytest.raises(InvalidInput, match=refused):
        runner.start(cluster.request("job-gloo", 0, free_port(), **gloo))
    with pytest.raises(InvalidInput, match=refused):
        cluster.dealer.start("job-gloo", world_size=NODES, master_addr="127.0.0.1", master_port=free_port(),
                             deadline_s=60.0, **gloo)  # type: ignore[arg-type]
    assert sorted(p.name for p in runner.jobs_dir.iterdir()) == jobs_before
    assert sorted(p.name for p in cluster.dealer_dir.iterdir()) == dealer_before
    with pytest.raises(NotFound):
        runner.status("job-gloo")
    with pytest.raises(NotFound):
        cluster.dealer.status("job-gloo")


def test_the_coordinator_cli_refuses_the_gloo_plane(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`coordinator serve --mpc-plane gloo` (the option is hidden) exits with one line
    saying why, before anything is created."""
    from mutualmind.cli import main

    data = tmp_path / "coordinator"
    code = main(["coordinator", "serve", "--certs", str(tmp_path / "certs"), "--data-dir", str(data),
                 "--node", "127.0.0.1:1,127.0.0.1:2", "--node", "127.0.0.1:3,127.0.0.1:4",
                 "--dealer", "127.0.0.1:5", "--mpc-plane", "gloo"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "data plane 'gloo' is refused" in err and "bench/train.py --plane gloo" in err
    assert not data.exists()


def test_unknown_dataset_fails_the_worker_with_a_typed_message(cluster: Cluster) -> None:
    runner = cluster.runners[0]
    runner.start(cluster.request("job-missing", 0, free_port(), dataset_ids=("provider0", "nope"), deadline=30.0))
    status = runner.wait("job-missing", timeout=40)
    assert status.state == JobState.FAILED and status.error_code == "not_found"
    assert "'nope'" in status.message
