"""Issue 12: the MPC data plane over gRPC with mutual TLS.

Real processes on loopback with real TLS from a real cluster CA: the repo's protocol
code (comparison, Beaver products with online dealer requests, training) gives the
same values and exactly the same round and byte counts over the gRPC plane as over
gloo and as with every party a thread of one process on in-memory links; and every refusal - no cluster certificate, another member's certificate in the
wrong rank, a job id the party was not given, a replayed or out-of-order message - ends
the job with a typed error naming the member, and a refused worker writes no result.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from mpcnode.worker.lifetime import Deadline
from mpcnode.worker.plane_memory import run_parties
from mpcnode.worker.plane_session import PlaneConfig, PlaneSession
from mutualmind.errors import IntegrityError, PermissionDenied, Unavailable
from mutualmind.transport.pki import create_cluster
from proto import plane_pb2
from tests.certs import ClusterCertsFactory
from tests.mpcnode.worker.cluster import (
    REPO,
    free_port,
    plane_fields,
    run_job,
    run_job_in_process,
    start_ttp,
    start_worker,
    store_dataset,
    worker_spec,
)
from tests.mpcnode.worker.plane_party import VALUES, protocol


def _run_parties(root: Path, plane: str, certs: Path, world: int = 3) -> list[dict]:
    """Run plane_party on `world` parties plus the dealer; each party's JSON line."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    fields = plane_fields("cmp", world, certs) if plane == "grpc" else None
    parties = []
    for rank in range(world):
        config = {"plane": plane, "rank": rank, "world_size": world, "master_port": port, **(fields or {})}
        path = root / f"party{rank}.json"
        path.write_text(json.dumps(config))
        parties.append(subprocess.Popen([sys.executable, "-m", "tests.mpcnode.worker.plane_party", str(path)],
                                        cwd=REPO, stdout=subprocess.PIPE, text=True, start_new_session=True))
    dealer = start_ttp(world, port, fields)
    try:
        outputs = [p.communicate(timeout=120)[0] for p in parties]
        dealer.wait(timeout=30)
    finally:
        for process in [*parties, dealer]:
            if process.poll() is None:
                process.kill()
    assert [p.returncode for p in parties] == [0] * world and dealer.returncode == 0
    return [json.loads(out.strip().splitlines()[-1]) for out in outputs]


def test_comparison_and_products_match_gloo_and_in_memory_values_rounds_and_bytes(
        tmp_path: Path, cluster_certs: ClusterCertsFactory) -> None:
    """The same protocol run over the gRPC plane, over gloo, and with the three parties
    and the dealer as threads of this process on in-memory links (`plane_memory`)."""
    certs = cluster_certs(3).folder
    over_grpc = _run_parties(tmp_path / "grpc", "grpc", certs)
    over_gloo = _run_parties(tmp_path / "gloo", "gloo", certs)
    in_memory = run_parties(3, protocol)
    expected = [1.0 if v < 0 else 0.0 for v in VALUES]
    for results in (over_grpc, over_gloo, in_memory):
        assert all(r["ltz"] == expected for r in results)
        np.testing.assert_allclose(results[0]["square"], np.square(VALUES), rtol=1e-3, atol=1e-3)
    counts = [(r["rounds"], r["bytes"]) for r in over_grpc]
    assert counts == [(r["rounds"], r["bytes"]) for r in over_gloo] == [(r["rounds"], r["bytes"]) for r in in_memory]
    # party 0 also paid for its online dealer request (3 rounds, as CrypTen counts it)
    assert over_grpc[0]["rounds"] > over_grpc[1]["rounds"]


def test_training_over_grpc_equals_gloo_and_in_memory_step_for_step(tmp_path: Path,
                                                                  cluster_certs: ClusterCertsFactory) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] - x[:, 1] > 0).astype(float)
    vx = rng.normal(size=(20, 3))
    vy = (vx[:, 0] - vx[:, 1] > 0).astype(float)
    model = {"kind": "logistic", "lr": 1.0, "epochs": 1, "batch_size": 16, "metric": "accuracy"}
    over_grpc = run_job(tmp_path / "grpc", x, y, vx, vy, [20, 20, 20], model, plane="grpc",
                        certs_dir=cluster_certs(3).folder)
    over_gloo = run_job(tmp_path / "gloo", x, y, vx, vy, [20, 20, 20], model, plane="gloo")
    in_memory = run_job_in_process(tmp_path / "memory", x, y, vx, vy, [20, 20, 20], model)
    keys = ("rounds", "bytes", "rounds_per_step", "bytes_per_step", "offline_rounds", "offline_bytes", "rounds_evaluation")
    counts = [[r["comm"][k] for k in keys] for r in over_grpc]
    assert counts == [[r["comm"][k] for k in keys] for r in over_gloo]
    assert counts == [[r["comm"][k] for k in keys] for r in in_memory]
    assert over_grpc[0]["comm"]["rounds_per_step"] == 16
    # fixed-point truncation is probabilistic: metrics agree within one validation row
    for other in (over_gloo, in_memory):
        np.testing.assert_allclose(over_grpc[0]["metrics"], other[0]["metrics"], atol=1.5 / len(vx))


# -- refusals, in one process: two parties' sessions on real mTLS ------------------------

def _config(certs: Path, rank: int, addresses: tuple[str, ...], *, job: str = "job-a",
            members: tuple[str, ...] = ("node0", "node1"), timeout: float = 3.0) -> PlaneConfig:
    return PlaneConfig(job_id=job, rank=rank, world_size=2, addresses=addresses, members=members,
                       certs_dir=certs, with_dealer=False, connect_timeout_s=timeout, deadline=Deadline.after(60.0))


def _meet(node0: PlaneConfig, other: PlaneConfig) -> tuple[object, object]:
    """Connect node0 (listening) and `other` (dialling); each side's session or error."""
    def attempt(config: PlaneConfig) -> object:
        try:
            return PlaneSession.connect(config)
        except Exception as err:  # the test inspects it
            return err

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(attempt, node0)
        second = pool.submit(attempt, other)
        return first.result(timeout=30), second.result(timeout=30)


def _addresses() -> tuple[str, ...]:
    return (f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}")


def _close(*sides: object) -> None:
    for side in sides:
        if isinstance(side, PlaneSession):
            side.close(wait_s=1.0)


def test_a_peer_without_a_cluster_certificate_never_joins(tmp_path: Path, cluster_certs: ClusterCertsFactory) -> None:
    foreign = tmp_path / "foreign"
    create_cluster(foreign, 2)   # a CA of its own: same member names, not the cluster's
    addresses = _addresses()
    node0, intruder = _meet(_config(cluster_certs(2).folder, 0, addresses), _config(foreign, 1, addresses))
    assert isinstance(intruder, Unavailable) and "node0" in intruder.message
    assert isinstance(node0, Unavailable)
    assert "node1 (rank 1) did not join job job-a" in node0.message


def test_another_members_certificate_in_the_wrong_rank_is_refused(cluster_certs: ClusterCertsFactory) -> None:
    certs = cluster_certs(3).folder
    addresses = _addresses()
    # node2's real certificate, claiming rank 1
    node0, intruder = _meet(_config(certs, 0, addresses),
                            _config(certs, 1, addresses, members=("node0", "node2")))
    assert isinstance(node0, PermissionDenied)
    assert "presenting node2's certificate claimed rank 1, which is node1's" in node0.message
    assert isinstance(intruder, PermissionDenied) and "node2" in intruder.message
    _close(node0, intruder)


def test_a_valid_certificate_for_another_job_is_refused(cluster_certs: ClusterCertsFactory) -> None:
    certs = cluster_certs(2).folder
    addresses = _addresses()
    node0, intruder = _meet(_config(certs, 0, addresses), _config(certs, 1, addresses, job="job-b"))
    assert isinstance(node0, PermissionDenied)
    assert "node1's certificate asked for job 'job-b'" in node0.message and "job 'job-a' only" in node0.message
    assert isinstance(intruder, PermissionDenied)
    _close(node0, intruder)


@pytest.mark.parametrize("case", ["replayed", "out of order"])
def test_a_replayed_or_out_of_order_message_ends_the_job(case: str, cluster_certs: ClusterCertsFactory) -> None:
    certs = cluster_certs(2).folder
    addresses = _addresses()
    node0, node1 = _meet(_config(certs, 0, addresses), _config(certs, 1, addresses))
    assert isinstance(node0, PlaneSession) and isinstance(node1, PlaneSession)
    try:
        to_node0 = node1.link(0)
        to_node0.send_tensor(torch.arange(4))                  # message 1, in order
        assert node0.link(1).recv_tensor(torch.empty(4, dtype=torch.long)).tolist() == [0, 1, 2, 3]
        bad_seq = 1 if case == "replayed" else 3               # 2 is due
        tensor = plane_pb2.PlaneTensor(dtype="int64", shape=[1], data=(7).to_bytes(8, "little"))
        to_node0._out.put(plane_pb2.PlaneFrame(seq=bad_seq, tensor=tensor))
        with pytest.raises(IntegrityError, match=f"node1 \\(rank 1\\) sent data-plane message {bad_seq} "
                                                 f"where 2 was due \\({case}\\)"):
            node0.link(1).recv_tensor(torch.empty(1, dtype=torch.long))
        with pytest.raises(IntegrityError):                    # the link stays failed
            node0.link(1).recv_tensor(torch.empty(1, dtype=torch.long))
    finally:
        _close(node0, node1)


def test_a_refused_worker_fails_cleanly_naming_the_member_and_writes_no_result(
        tmp_path: Path, cluster_certs: ClusterCertsFactory) -> None:
    """A real worker (rank 0 of 2) refuses a stream for another job and exits 2."""
    certs = cluster_certs(2).folder
    dirs = [tmp_path / "node0", tmp_path / "node1"]
    rng = np.random.default_rng(1)
    store_dataset(dirs, "p0", rng.normal(size=(8, 2)), np.arange(8) % 2)
    store_dataset(dirs, "val", rng.normal(size=(4, 2)), np.arange(4) % 2, purpose="validation")
    model = {"kind": "logistic", "lr": 1.0, "epochs": 1, "batch_size": 4, "metric": "accuracy"}
    fields = plane_fields("job-a", 2, certs, connect_timeout_s=20.0)
    out = tmp_path / "out0"
    spec = {**worker_spec("job-a", 0, 2, free_port(), dirs[0], out, ["p0"], "val", model), **fields}
    worker = start_worker(spec, tmp_path / "spec0.json")
    try:
        addresses = tuple(fields["plane_addresses"])
        refused: list[BaseException] = []

        def intrude() -> None:
            try:
                PlaneSession.connect(_config(certs, 1, addresses, job="job-b", timeout=15.0))
            except Exception as err:
                refused.append(err)

        intruder = threading.Thread(target=intrude)
        intruder.start()
        assert worker.wait(timeout=60) == 2
        intruder.join(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    error = json.loads((out / "error.json").read_text())
    assert error["code"] == "permission_denied"
    assert "node1's certificate asked for job 'job-b'" in error["message"]
    assert not (out / "result.json").exists() and not (out / "weights.bin").exists()
    assert refused and isinstance(refused[0], PermissionDenied)


# -- the dealer's allow-list ------------------------------------------------------------

@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        (plane_pb2.DealerItem(kind=plane_pb2.DEALER_KIND_UNSPECIFIED, size0=[2]), "kind 0 is not served"),
        (plane_pb2.DealerItem(kind=plane_pb2.ADDITIVE, size0=[2], size1=[2], op="conv2d"), "mul and matmul only"),
        (plane_pb2.DealerItem(kind=plane_pb2.ADDITIVE, size0=[2, 3], size1=[4, 5], op="matmul"), "has no result"),
        (plane_pb2.DealerItem(kind=plane_pb2.SQUARE, size0=[1 << 13, 1 << 13]), "elements"),
        (plane_pb2.DealerItem(kind=plane_pb2.WRAPS, size0=[1] * 9), "not a shape"),
        (plane_pb2.DealerItem(kind=plane_pb2.B2A, size0=[-1]), "not a shape"),
        (plane_pb2.DealerItem(kind=plane_pb2.SQUARE, size0=[2], size1=[2]), "one shape"),
    ],
)
def test_the_dealer_refuses_requests_off_its_allow_list(item: plane_pb2.DealerItem, fragment: str) -> None:
    from mpcnode.worker.plane_dealer import decode_request
    from mutualmind.errors import InvalidInput

    with pytest.raises(InvalidInput, match=fragment):
        decode_request(plane_pb2.DealerRequest(items=[item]))
    many = plane_pb2.DealerItem(kind=plane_pb2.SQUARE, size0=[1 << 12, 1 << 12])
    with pytest.raises(InvalidInput, match="in all"):
        decode_request(plane_pb2.DealerRequest(items=[many, many, many], batch=True))
    with pytest.raises(InvalidInput, match="1 item"):
        decode_request(plane_pb2.DealerRequest(items=[many, many]))


def test_party_zero_sends_only_typed_allow_listed_requests() -> None:
    from mpcnode.worker.plane_dealer import decode_request, encode_item
    from mutualmind.errors import InvalidInput

    item = encode_item("additive", (torch.Size([2, 3]), torch.Size([3, 4]), "matmul"), {})
    assert decode_request(plane_pb2.DealerRequest(items=[item])) == [("additive", (torch.Size([2, 3]), torch.Size([3, 4]), "matmul"))]
    with pytest.raises(InvalidInput):
        encode_item("additive", (torch.Size([1, 1, 4, 4]), torch.Size([1, 1, 2, 2]), "conv2d"), {"stride": 2})
    with pytest.raises(InvalidInput):
        encode_item("terminate", (), {})
