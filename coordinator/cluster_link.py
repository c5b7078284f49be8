"""What the coordinator needs from the nodes and the dealer to run one MPC job.

`rounds.py` drives jobs through the `ClusterLink` protocol and never sees gRPC;
`coordinator/cluster_link_client.py` implements it over the nodes' and dealer's mutual-TLS
cluster ports. Plain dataclasses cross this line in both directions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from mutualmind.vocabulary.states import JobState


@dataclass(frozen=True)
class NodeEndpoint:
    """Where node `index` listens: public port (providers), cluster port (coordinator),
    and the host its MPC worker uses for the data plane."""

    index: int
    name: str
    public_address: str
    cluster_address: str
    mpc_host: str = "127.0.0.1"


@dataclass(frozen=True)
class JobOrder:
    """One MPC job, as every node and the dealer are told it (each adds its rank)."""

    job_id: str
    round_id: str
    world_size: int
    master_addr: str
    master_port: int
    dataset_ids: tuple[str, ...]
    validation_dataset_id: str
    model_spec_json: str
    job_digest: str
    deadline_s: float
    # the data plane, "grpc" (issue 12: node rank i listens on plane_addresses[i] holding
    # certificate plane_members[i]); nodes and the dealer refuse any other
    plane: str = "grpc"
    plane_addresses: tuple[str, ...] = ()
    plane_members: tuple[str, ...] = ()
    # a tournament's job (issue 15): `tournament_job.TournamentOrder` JSON ("" = a round's)
    tournament_json: str = ""
    # "training" (a round or a tournament) or "inference" (issue 16: coordinator.inference)
    kind: str = "training"


@dataclass(frozen=True)
class NodeJobReport:
    """A node's view of its part of a job; `attestation` is set once it is done."""

    state: str                    # a JobState value, as the node sent it
    message: str = ""
    progress: float = 0.0
    attestation_payload: bytes = b""   # the exact bytes the node signed
    attestation: bytes = b""           # its Ed25519 signature over them
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class ClusterLink(Protocol):
    """Start, watch and stop one job on every node and on the dealer."""

    @property
    def nodes(self) -> tuple[NodeEndpoint, ...]: ...

    def start_dealer(self, order: JobOrder) -> None: ...

    def stop_dealer(self, job_id: str) -> None: ...

    def start_job(self, node_index: int, order: JobOrder) -> None: ...

    def job_report(self, node_index: int, job_id: str) -> NodeJobReport: ...

    def cancel_job(self, node_index: int, job_id: str) -> None: ...

    def node_health(self, node_index: int) -> str: ...
