"""Client of the dealer's control API (used by the coordinator and admin tools).

Calls go over an already-open mutual-TLS channel; a failed call becomes the typed
error the dealer raised (or Unavailable when it cannot be reached).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from mutualmind.errors import Unavailable
from mutualmind.transport import MemberChannel, call
from mutualmind.vocabulary.deadlines import CLUSTER_CALL_S
from proto import dealer_pb2, dealer_pb2_grpc


@dataclass(frozen=True)
class DealerSession:
    job_id: str
    state: str  # running | done | failed | cancelled
    message: str = ""


# How long `start` keeps retrying an unreachable dealer (see there); a caller may pass its
# own window (`start_retry_s`), e.g. a test whose dealer is down on purpose.
START_RETRY_S = 4.0
START_RETRY_PAUSE_S = 0.5


class DealerClient:
    """start / status / stop one job's TTP process on the dealer."""

    def __init__(self, channel: grpc.Channel | MemberChannel, *,
                 timeout_s: float = CLUSTER_CALL_S, start_retry_s: float = START_RETRY_S) -> None:
        # the coordinator's link passes a MemberChannel (renewed when the dealer was
        # unreachable, so a retried start looks its name up anew); tools pass a channel
        self._member = channel if isinstance(channel, MemberChannel) else None
        self._stub = None if self._member else dealer_pb2_grpc.DealerStub(channel)
        self._timeout = timeout_s
        self._start_retry_s = start_retry_s

    def start(self, job_id: str, *, world_size: int, master_addr: str, master_port: int, deadline_s: float,
              plane: str = "grpc", plane_addresses: Sequence[str] = (),
              plane_members: Sequence[str] = ()) -> DealerSession:
        request = dealer_pb2.DealerSessionRequest(
            job_id=job_id, world_size=world_size, master_addr=master_addr, master_port=master_port, deadline_s=deadline_s,
            plane=plane, plane_addresses=list(plane_addresses), plane_members=list(plane_members),
        )
        # A failure to reach the dealer is retried for start_retry_s: a name lookup that
        # failed once (seen under podman's DNS while the container network changes) must
        # not fail the round at its start; a dealer that stays down still fails it soon,
        # as Unavailable naming the dealer. Unavailable means no byte reached the dealer,
        # so a retry cannot start a session twice.
        give_up = time.monotonic() + self._start_retry_s
        while True:
            try:
                return self._call("StartSession", request)
            except Unavailable:
                if time.monotonic() >= give_up:
                    raise
                time.sleep(START_RETRY_PAUSE_S)

    def status(self, job_id: str) -> DealerSession:
        return self._call("GetSession", dealer_pb2.DealerSessionQuery(job_id=job_id))

    def stop(self, job_id: str) -> DealerSession:
        return self._call("StopSession", dealer_pb2.DealerSessionQuery(job_id=job_id))

    def _call(self, method: str, request: object) -> DealerSession:
        if self._member is not None:
            reply = self._member.call(method, request, timeout=self._timeout)
        else:
            reply = call(self._stub, method, request, timeout=self._timeout)
        return DealerSession(job_id=reply.job_id, state=reply.state, message=reply.message)
