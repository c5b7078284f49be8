"""The listening side of the MPC data plane: one gRPC service, `Plane.Exchange`.

A node's worker listens on its MPC port (mutual TLS: gRPC has verified the caller's
certificate against the cluster CA before this code runs) for the parties of higher
rank and the dealer. The first frame must be the caller's hello; `accept` (the
session's rules: right job, right rank for that certificate) turns it into a
`PeerLink` or refuses it, and from then on the stream is that link's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc

from mpcnode.worker.plane_codec import Frame, decode_frame, encode_frame
from mpcnode.worker.plane_keepalive import KEEPALIVE_S, keepalive_options
from mpcnode.worker.plane_links import PeerLink, pump
from mutualmind.errors import InvalidInput, MutualMindError, Unavailable
from mutualmind.transport import (
    RunningServer,
    build_server,
    peer_name,
    peer_role,
    server_credentials,
)
from mutualmind.transport.status import status_for_error
from proto import plane_pb2, plane_pb2_grpc

SERVICE_NAME = plane_pb2.DESCRIPTOR.services_by_name["Plane"].full_name
Accept = Callable[[plane_pb2.PlaneHello, str | None, str | None], PeerLink]
Answer = Callable[[PeerLink], plane_pb2.PlaneHello]


class PlaneServicer(plane_pb2_grpc.PlaneServicer):
    """Hands each accepted stream to its link; refuses the rest with their reason."""

    def __init__(self, accept: Accept, answer: Answer) -> None:
        self._accept = accept
        self._answer = answer

    def Exchange(self, request_iterator: Iterator[Frame],
                 context: grpc.ServicerContext) -> Iterator[plane_pb2.PlaneFrame | bytes]:
        try:
            first = next(request_iterator, None)
            if not isinstance(first, plane_pb2.PlaneFrame) or first.seq != 0 or first.WhichOneof("body") != "hello":
                raise InvalidInput("a data-plane stream starts with a hello (message 0)")
            link = self._accept(first.hello, peer_name(context), peer_role(context))
        except MutualMindError as err:
            context.abort_with_status(status_for_error(err))  # raises: the call ends here
            return
        threading.Thread(target=pump, args=(link, _typed(request_iterator)), daemon=True,
                         name=f"plane-from-{link.member}").start()
        yield plane_pb2.PlaneFrame(seq=0, hello=self._answer(link))
        yield from link.outgoing()


def _typed(frames: Iterator[Frame]) -> Iterator[Frame]:
    """The dialler's frames; on this side gRPC raises a bare RpcError (no status) only
    when the call was cancelled: the dialler went away or its connection was dropped."""
    try:
        yield from frames
    except grpc.RpcError:
        raise Unavailable("the dialling party's stream was cancelled or its connection "
                          "dropped (no answer to keepalive pings)") from None


def _add_plane_servicer(servicer: PlaneServicer, server: grpc.Server) -> None:
    """`add_PlaneServicer_to_server` with the plane's codec (`plane_codec`) in place of
    the generated one: the same method and messages, a tensor's bytes copied once."""
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.Exchange, request_deserializer=decode_frame, response_serializer=encode_frame)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, {"Exchange": handler}),))


def start_plane_server(address: str, certs_dir: Path, member: str, accept: Accept,
                       answer: Answer, streams: int, keepalive_s: float = KEEPALIVE_S) -> RunningServer:
    """Listen on `address` (host:port, this party's MPC port) as `member`, mTLS only;
    a silent dialler is pinged every `keepalive_s` and dropped when it answers not."""
    return build_server(
        [(_add_plane_servicer, PlaneServicer(accept, answer))],
        address=address,
        credentials=server_credentials(certs_dir, member, require_client_cert=True),
        service_names=[SERVICE_NAME],
        max_workers=streams + 4,   # each stream holds a thread for its outgoing side
        overrides=keepalive_options(keepalive_s, listener=True),
    )
