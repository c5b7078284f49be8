"""Which MPC data plane a job runs on: one name list, shared by coordinator, nodes, dealer.

`gloo`: CrypTen's torch.distributed communicator (phase 1): unauthenticated, only for
trusted networks, kept as the benchmark baseline. `grpc`: the gRPC data plane (issue
12), mutual TLS from the cluster CA between the nodes and the dealer, typed messages,
no pickle. New cluster jobs use DEFAULT_PLANE unless the coordinator is told otherwise
(`coordinator serve --mpc-plane`).
"""

from __future__ import annotations

PLANES = ("gloo", "grpc")
DEFAULT_PLANE = "grpc"
