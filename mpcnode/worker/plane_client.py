"""The dialling side of the MPC data plane: open one party's stream to a lower rank.

The TLS handshake checks the server holds the certificate of the member expected at
that rank (`server_name`, see `mutualmind.transport.channel`); the server's hello
answer must then name the same job and rank. The stream waits for the peer to come up
(`wait_for_ready`) but only for `timeout_s`: a member that is down, unreachable or not
holding its certificate fails the job naming it.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc

from mpcnode.worker.plane_codec import Frame, decode_frame, encode_frame
from mpcnode.worker.plane_keepalive import KEEPALIVE_S, keepalive_options
from mpcnode.worker.plane_links import PeerLink, pump
from mutualmind.errors import DeadlineExceeded, MutualMindError, Unavailable
from mutualmind.transport import channel_credentials, error_from_rpc_error, open_channel
from mutualmind.transport.status import answered_by_handler
from proto import plane_pb2

CheckAnswer = Callable[[Frame], None]
# the plane's one method, with its own codec (`plane_codec`: a tensor's bytes copied once)
EXCHANGE_METHOD = f"/{plane_pb2.DESCRIPTOR.services_by_name['Plane'].full_name}/Exchange"
# a stream is not a retryable call: a broken one fails the job, whose re-run starts afresh
PLANE_CHANNEL_OVERRIDES: tuple[tuple[str, int | str], ...] = (("grpc.enable_retries", 0),)
# A job's parties start within milliseconds of each other, so a dialler often finds its
# peer's port not yet listening; gRPC then retries only after its reconnect backoff,
# which it never lets fall below 100 ms (200 ms on cluster channels): ~0.1-0.2 s of a
# one-row inference's ~0.26 s join (bench/plane_join.py). So the dialler first waits
# for the port to accept a plain TCP connection, trying every PROBE_INTERVAL_S, and opens
# its channel only then: the channel's first attempt finds the listener up.
PROBE_INTERVAL_S = 0.005

def dial(address: str, certs_dir: Path, member: str, link: PeerLink,
         hello: plane_pb2.PlaneHello, check_answer: CheckAnswer, timeout_s: float,
         keepalive_s: float = KEEPALIVE_S) -> Callable[[], None]:
    """Open the stream to `link`'s member at `address` presenting `member`'s certificate;
    returns a function that closes the channel. Raises a typed error naming the peer.
    A silent peer is pinged every `keepalive_s` and dropped when it answers not."""
    started = time.monotonic()
    wait_until_listening(address, timeout_s)
    timeout_s = max(0.0, timeout_s - (time.monotonic() - started))
    overrides = (*PLANE_CHANNEL_OVERRIDES, *keepalive_options(keepalive_s, listener=False))
    channel = open_channel(address, channel_credentials(certs_dir, member),
                           server_name=link.member, overrides=overrides)
    frames = itertools.chain([plane_pb2.PlaneFrame(seq=0, hello=hello)], link.outgoing())
    exchange = channel.stream_stream(EXCHANGE_METHOD, request_serializer=encode_frame,
                                     response_deserializer=decode_frame)
    call = exchange(frames, wait_for_ready=True)
    answered = threading.Event()
    failure: list[MutualMindError] = []

    def read() -> None:
        responses = _typed(call)
        try:
            first = next(responses, None)
            if first is None:
                raise Unavailable(f"{link.member} at {address} closed the data-plane stream at once")
            check_answer(first)
        except Unavailable as err:
            failure.append(Unavailable(f"no data plane to {link.member} (rank {link.rank}) at {address}: "
                                       f"{err.message}"))
            answered.set()
            link.closed.set()
            return
        except MutualMindError as err:
            failure.append(err)
            answered.set()
            link.closed.set()
            return
        answered.set()
        pump(link, responses)

    threading.Thread(target=read, daemon=True, name=f"plane-to-{link.member}").start()
    if not answered.wait(timeout_s):
        call.cancel()
        channel.close()
        raise Unavailable(
            f"no data plane to {link.member} (rank {link.rank}) at {address} within {timeout_s:.0f} s: "
            f"it is down, unreachable, or did not present {link.member}'s cluster certificate")
    if failure:
        call.cancel()
        channel.close()
        raise failure[0]
    return channel.close


def wait_until_listening(address: str, timeout_s: float) -> bool:
    """Wait (up to `timeout_s`) until something accepts TCP connections at `address`
    (host:port, a bracketed IPv6 host too); the probe's connection is closed at once,
    before any TLS. True once it accepted; False on anything but a refusal (unreachable,
    a bad name) or at the timeout - the channel's own attempt then reports what it sees."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            with socket.create_connection((host, int(port)), timeout=min(left, 1.0)):
                return True
        except ConnectionRefusedError:
            time.sleep(min(PROBE_INTERVAL_S, max(0.0, deadline - time.monotonic())))
        except (OSError, ValueError):
            return False


def _typed(frames: Iterator[Frame]) -> Iterator[Frame]:
    """The listener's frames; a refusal stays the listener's typed error, a failure of the
    connection itself (dropped, unanswered keepalive) says what the transport saw."""
    try:
        yield from frames
    except grpc.RpcError as err:
        typed = error_from_rpc_error(err)
        if isinstance(typed, Unavailable | DeadlineExceeded) and not answered_by_handler(err):
            code = err.code().name if isinstance(err, grpc.Call) else "no status"
            details = err.details() if isinstance(err, grpc.Call) else ""
            raise Unavailable(f"the connection failed ({code}: {details})") from None
        raise typed from None
