"""Client of the dealer's control API (used by the coordinator and admin tools).

Calls go over an already-open mutual-TLS channel; a failed call becomes the typed
error the dealer raised (or Unavailable when it cannot be reached).
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from mutualmind.transport import call
from mutualmind.vocabulary.deadlines import CLUSTER_CALL_S
from proto import dealer_pb2, dealer_pb2_grpc


@dataclass(frozen=True)
class DealerSession:
    job_id: str
    state: str  # running | done | failed | cancelled
    message: str = ""


class DealerClient:
    """start / status / stop one job's TTP process on the dealer."""

    def __init__(self, channel: grpc.Channel, *, timeout_s: float = CLUSTER_CALL_S) -> None:
        self._stub = dealer_pb2_grpc.DealerStub(channel)
        self._timeout = timeout_s

    def start(self, job_id: str, *, world_size: int, master_addr: str, master_port: int, deadline_s: float) -> DealerSession:
        request = dealer_pb2.DealerSessionRequest(
            job_id=job_id, world_size=world_size, master_addr=master_addr, master_port=master_port, deadline_s=deadline_s
        )
        # wait_for_ready: a transient failure to reach the dealer (a name lookup that failed
        # once, e.g. while a container network changes) is waited out within the deadline
        # instead of failing the round at its start
        return self._call("StartSession", request, wait_for_ready=True)

    def status(self, job_id: str) -> DealerSession:
        return self._call("GetSession", dealer_pb2.DealerSessionQuery(job_id=job_id))

    def stop(self, job_id: str) -> DealerSession:
        return self._call("StopSession", dealer_pb2.DealerSessionQuery(job_id=job_id))

    def _call(self, method: str, request: object, *, wait_for_ready: bool = False) -> DealerSession:
        reply = call(self._stub, method, request, timeout=self._timeout, wait_for_ready=wait_for_ready)
        return DealerSession(job_id=reply.job_id, state=reply.state, message=reply.message)
