"""Which MPC data plane a job runs on: one rule, shared by coordinator, nodes, dealer.

`grpc`: the gRPC data plane (issue 12), mutual TLS from the cluster CA between the nodes
and the dealer, typed messages, no pickle - the only plane of a cluster job.
`gloo`: CrypTen's torch.distributed communicator (phase 1): unauthenticated, pickled
control objects, a rendezvous store any host can read. It stays only as a benchmark
baseline: a worker or TTP process runs it only when started by a benchmark or a test
with the bench flag (`BENCH_FLAG`), which nodes, the dealer, the cluster CLI and
compose never pass; everything else refuses it with `check_plane`.
"""

from __future__ import annotations

from mutualmind.errors import InvalidInput

DEFAULT_PLANE = "grpc"
BENCH_PLANE = "gloo"
PLANES = (DEFAULT_PLANE, BENCH_PLANE)
# the command-line flag of `python -m mpcnode.worker` and `python -m mpcnode.worker.ttp`
# that lets a benchmark or test harness run a gloo job
BENCH_FLAG = "--bench-gloo"


def check_plane(plane: object, *, bench: bool = False) -> str:
    """`plane` if a job may run on it here: grpc always, gloo only in bench mode."""
    if plane == DEFAULT_PLANE or (plane == BENCH_PLANE and bench):
        return plane
    if plane == BENCH_PLANE:
        raise InvalidInput(
            "data plane 'gloo' is refused: cluster jobs run only on the gRPC data plane (mutual TLS "
            "between the nodes and the dealer); gloo is unauthenticated and kept only as a benchmark "
            "baseline (bench/train.py --plane gloo)")
    raise InvalidInput(f"data plane {plane!r} is unknown: cluster jobs run on {DEFAULT_PLANE!r}")
