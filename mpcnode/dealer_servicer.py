"""The dealer's gRPC servicer: role check, one call into `TtpSessions`, one reply.

Typed errors raised below become statuses in `mutualmind.transport`'s interceptor.
"""

from __future__ import annotations

import grpc

from mpcnode.ttp_sessions import SessionStatus, TtpSessions
from mutualmind.transport import require_role
from mutualmind.vocabulary.data_plane import DEFAULT_PLANE
from proto import dealer_pb2, dealer_pb2_grpc

# who may drive the dealer over the cluster port
CONTROL_ROLES = ("coordinator", "admin")
DEALER_SERVICE = dealer_pb2.DESCRIPTOR.services_by_name["Dealer"].full_name


def _reply(status: SessionStatus) -> dealer_pb2.DealerSessionStatus:
    return dealer_pb2.DealerSessionStatus(job_id=status.job_id, state=status.state, message=status.message)


class DealerServicer(dealer_pb2_grpc.DealerServicer):
    def __init__(self, sessions: TtpSessions) -> None:
        self._sessions = sessions

    def StartSession(
        self, request: dealer_pb2.DealerSessionRequest, context: grpc.ServicerContext
    ) -> dealer_pb2.DealerSessionStatus:
        require_role(context, *CONTROL_ROLES)
        return _reply(
            self._sessions.start(
                request.job_id, request.world_size, request.master_addr, request.master_port, request.deadline_s,
                plane=request.plane or DEFAULT_PLANE, plane_addresses=tuple(request.plane_addresses),
                plane_members=tuple(request.plane_members),
            )
        )

    def GetSession(
        self, request: dealer_pb2.DealerSessionQuery, context: grpc.ServicerContext
    ) -> dealer_pb2.DealerSessionStatus:
        require_role(context, *CONTROL_ROLES)
        return _reply(self._sessions.status(request.job_id))

    def StopSession(
        self, request: dealer_pb2.DealerSessionQuery, context: grpc.ServicerContext
    ) -> dealer_pb2.DealerSessionStatus:
        require_role(context, *CONTROL_ROLES)
        return _reply(self._sessions.cancel(request.job_id))
