"""Fixtures every test folder shares.

`cluster_certs(n)` is a ready cluster identity of n nodes (CA, member certificates and
keys, node signing keys, cluster.json), written by the real `create_cluster` once per
node count per session. Tests read it and never write into it (the folder is made
read-only): a test that changes a cluster folder (corrupts a key, re-creates it) or
tests certificate creation itself calls `create_cluster` on a folder of its own.
"""

from __future__ import annotations

import pytest

from mutualmind.transport.pki import create_cluster
from tests.certs import ClusterCerts, ClusterCertsFactory


@pytest.fixture(scope="session")
def cluster_certs(tmp_path_factory: pytest.TempPathFactory) -> ClusterCertsFactory:
    """`cluster_certs(nodes)`: the session's read-only cluster folder of that size."""
    made: dict[int, ClusterCerts] = {}

    def get(nodes: int) -> ClusterCerts:
        if nodes not in made:
            folder = tmp_path_factory.mktemp(f"cluster{nodes}") / "certs"
            made[nodes] = ClusterCerts(folder, create_cluster(folder, nodes))
            folder.chmod(0o500)   # read-only: a test that writes here fails at once
        return made[nodes]

    return get


# Tests that run MPC jobs (3 worker processes and a TTP each, enough to fill both cores).
# Under pytest-xdist with `--dist loadgroup` they all go to one worker, one job at a
# time, while the other worker takes the rest file by file (so a module's fixture, such
# as a started cluster, is set up once); without xdist the marks do nothing.
MPC_HEAVY = ("tests/mpcnode/worker/", "tests/coordinator/rounds/",
             "tests/coordinator/admin/test_admin_round_run.py", "tests/mpcnode/test_mpc_jobs.py",
             "tests/mpcnode/test_node_jobs_grpc.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        heavy = item.nodeid.startswith(MPC_HEAVY)   # node ids are relative to the repository
        item.add_marker(pytest.mark.xdist_group("mpc" if heavy else item.nodeid.split("::")[0]))
