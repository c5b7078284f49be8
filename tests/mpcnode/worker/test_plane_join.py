"""A party joins the data plane in about one handshake, not one per peer in turn (issue 16).

Real sessions (mutual TLS on loopback, one thread per party in this process): the dealer
dials every node at once, so a node that is slow to listen holds up only its own link;
and a dialler waits for a peer's port to listen before it opens its channel, so it is
not left in gRPC's reconnect backoff (at least 100 ms) once the peer is up.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from mpcnode.worker.plane_client import wait_until_listening
from mpcnode.worker.plane_session import PlaneConfig, PlaneSession
from proto import plane_pb2
from tests.certs import ClusterCertsFactory
from tests.mpcnode.worker.cluster import free_port

SLOW_S = 0.6   # node0 starts listening this late


class _Recording(PlaneSession):
    """A session that notes when each inbound link was accepted."""

    accepted: dict[tuple[int, int], float] = {}

    def _accept(self, hello: plane_pb2.PlaneHello, cert_name: str | None, cert_role: str | None):  # type: ignore[no-untyped-def]
        link = super()._accept(hello, cert_name, cert_role)
        _Recording.accepted[(self.config.rank, int(hello.from_rank))] = time.monotonic()
        return link


def test_the_dealer_dials_every_node_at_once_and_a_slow_node_delays_only_its_own_link(
        cluster_certs: ClusterCertsFactory) -> None:
    certs = cluster_certs(3).folder
    addresses = tuple(f"127.0.0.1:{free_port()}" for _ in range(3))
    sessions: dict[int, PlaneSession] = {}
    errors: list[BaseException] = []
    _Recording.accepted.clear()

    def join(rank: int, delay_s: float) -> None:
        time.sleep(delay_s)
        try:
            sessions[rank] = _Recording.connect(PlaneConfig(
                job_id="job-join", rank=rank, world_size=3, addresses=addresses,
                members=("node0", "node1", "node2"), certs_dir=Path(certs), connect_timeout_s=20.0))
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    started = time.monotonic()
    threads = [threading.Thread(target=join, args=(rank, SLOW_S if rank == 0 else 0.0)) for rank in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert not errors, errors
        assert sorted(sessions) == [0, 1, 2, 3]
        for rank in (1, 2):   # the dealer (rank 3) reached nodes 1 and 2 while node0 was not up
            assert _Recording.accepted[(rank, 3)] - started < SLOW_S, _Recording.accepted
        # and node0 within moments of listening: no reconnect backoff after its refusals
        assert _Recording.accepted[(0, 3)] - started < SLOW_S + 0.5, _Recording.accepted
        for rank in (0, 1, 2):   # every link carries a message both ways
            for peer in sessions[rank].links.values():
                peer.send_control(plane_pb2.PlaneControl.BARRIER)
        for rank in (0, 1, 2):
            for peer in sessions[rank].links.values():
                if peer.rank != 3:
                    peer.recv_control(plane_pb2.PlaneControl.BARRIER)
    finally:
        for session in sessions.values():
            session.close(wait_s=1.0)


def test_waiting_for_a_port_ends_once_it_listens_and_says_so_at_its_timeout() -> None:
    port = free_port()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    def listen_later() -> None:
        time.sleep(0.2)
        listener.bind(("127.0.0.1", port))
        listener.listen()

    thread = threading.Thread(target=listen_later)
    started = time.monotonic()
    thread.start()
    try:
        assert wait_until_listening(f"127.0.0.1:{port}", 10.0) is True
        assert 0.2 <= time.monotonic() - started < 5.0
    finally:
        thread.join()
        listener.close()
    started = time.monotonic()
    assert wait_until_listening(f"127.0.0.1:{free_port()}", 0.3) is False
    assert 0.3 <= time.monotonic() - started < 2.0
