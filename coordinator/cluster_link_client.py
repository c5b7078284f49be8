"""The coordinator's gRPC clients to the nodes and the dealer: `ClusterLink` on the wire.

Every call goes over the member's mutual-TLS cluster port with the coordinator's
certificate and a deadline; a failed call becomes the typed error the servicer raised
(or Unavailable when the member cannot be reached).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from coordinator.cluster_link import JobOrder, NodeEndpoint, NodeJobReport
from coordinator.dealer_client import START_RETRY_S, DealerClient
from mutualmind.errors import InvalidInput, Unavailable
from mutualmind.transport import MemberChannel, channel_credentials, probe_health
from mutualmind.vocabulary.deadlines import CLUSTER_CALL_S, JOB_CANCEL_S, JOB_START_S
from proto import dealer_pb2_grpc, node_pb2, node_pb2_grpc


class GrpcClusterLink:
    """Drives jobs on the nodes' NodeControl services and on the dealer."""

    def __init__(self, nodes: list[NodeEndpoint], dealer_address: str, certs_dir: Path,
                 *, member_name: str = "coordinator",
                 dealer_start_retry_s: float = START_RETRY_S) -> None:
        if not nodes:
            raise InvalidInput("a cluster needs at least two nodes")
        self._nodes = tuple(sorted(nodes, key=lambda n: n.index))
        if [n.index for n in self._nodes] != list(range(len(self._nodes))):
            raise InvalidInput("node indices must be 0..n-1, each once")
        self._credentials = channel_credentials(certs_dir, member_name)
        # renewed after a call found the member unreachable: a node or the dealer restarted
        # under a new address is reached by the next call (see MemberChannel)
        self._members = [MemberChannel(n.cluster_address, self._credentials,
                                       node_pb2_grpc.NodeControlStub, server_name=n.name)
                         for n in self._nodes]
        self._dealer_address = dealer_address
        self._dealer_start_retry_s = dealer_start_retry_s
        self._dealer_channel = MemberChannel(dealer_address, self._credentials,
                                             dealer_pb2_grpc.DealerStub, server_name="dealer")

    @property
    def nodes(self) -> tuple[NodeEndpoint, ...]:
        return self._nodes

    def close(self) -> None:
        for member in (*self._members, self._dealer_channel):
            member.close()

    @property
    def _dealer(self) -> DealerClient:
        return DealerClient(self._dealer_channel, start_retry_s=self._dealer_start_retry_s)

    def start_dealer(self, order: JobOrder) -> None:
        self._dealer.start(order.job_id, world_size=order.world_size,
                           master_addr=order.master_addr, master_port=order.master_port,
                           deadline_s=order.deadline_s, plane=order.plane,
                           plane_addresses=order.plane_addresses, plane_members=order.plane_members)

    def stop_dealer(self, job_id: str) -> None:
        self._dealer.stop(job_id)

    def start_job(self, node_index: int, order: JobOrder) -> None:
        spec = node_pb2.JobSpec(
            job_id=order.job_id, round_id=order.round_id, world_size=order.world_size,
            rank=node_index, master_addr=order.master_addr, master_port=order.master_port,
            dealer_addr=self._dealer_address, dataset_ids=list(order.dataset_ids),
            validation_dataset_id=order.validation_dataset_id,
            model_spec_json=order.model_spec_json, job_digest=bytes.fromhex(order.job_digest),
            deadline_s=order.deadline_s, plane=order.plane, plane_addresses=list(order.plane_addresses),
            plane_members=list(order.plane_members), tournament_json=order.tournament_json,
            kind=order.kind, beacon=bytes.fromhex(order.beacon))
        self._call(node_index, "StartJob", spec, wait_for_ready=True, timeout=JOB_START_S)

    def job_report(self, node_index: int, job_id: str) -> NodeJobReport:
        reply = self._call(node_index, "GetJob", node_pb2.JobStatusRequest(job_id=job_id))
        result = reply.result
        stats = json.loads(result.stats_json) if result.stats_json else {}
        return NodeJobReport(state=reply.state, message=reply.message, progress=reply.progress,
                             attestation_payload=result.attestation_payload_json.encode(),
                             attestation=bytes(result.attestation), stats=stats)

    def cancel_job(self, node_index: int, job_id: str) -> None:
        # short: it runs after a failure, whose report must not wait on an unreachable
        # node (which stops the job itself at the job's deadline)
        self._call(node_index, "CancelJob", node_pb2.CancelJobRequest(job_id=job_id),
                   timeout=JOB_CANCEL_S)

    def cosign_checkpoint(self, node_index: int, note: str, verifier_key: str, old_size: int,
                          proof: list[bytes], *, timeout: float) -> str:
        """Node `node_index`'s cosignature line for `note` (`coordinator.witnesses`)."""
        reply = self._call(node_index, "CosignCheckpoint", node_pb2.CosignRequest(
            checkpoint_note=note, verifier_key=verifier_key, old_size=old_size,
            consistency_proof=proof), timeout=timeout)
        return str(reply.cosignature_line)

    def witness_size(self, node_index: int, *, timeout: float) -> int:
        """The tree size of the last checkpoint node `node_index` cosigned (0: none yet)."""
        reply = self._call(node_index, "GetWitnessHead", node_pb2.WitnessHeadRequest(),
                           timeout=timeout)
        return int(reply.size)

    def node_health(self, node_index: int) -> str:
        node = self._nodes[node_index]
        return probe_health(node.cluster_address, self._credentials, server_name=node.name)

    def _call(self, node_index: int, method: str, request: object, *,
              wait_for_ready: bool = False, timeout: float = CLUSTER_CALL_S) -> Any:
        """One call; polls fail fast on a dead node, starts wait briefly for a connection.
        A node that cannot be reached (down, its host or link cut) fails the call with an
        Unavailable naming it, so a failed round says which member to look at."""
        node = self._nodes[node_index]
        return self._members[node_index].call(
            method, request, timeout=timeout, wait_for_ready=wait_for_ready,
            unreachable=lambda code: Unavailable(
                f"node {node_index} ({node.name}) at {node.cluster_address} did not answer "
                f"{method} ({code}): it is down or its link is cut; re-run once it is back"))
