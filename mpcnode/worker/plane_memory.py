"""Every party of a job in one process, as threads, over in-memory links: for fast tests
of the protocol code (comparison, training) with the plane's own communicator.

Each pair of parties (and the dealer with each node) gets two `PeerLink`s joined by a
pipe thread per direction that moves each frame through the plane's codec
(`encode_frame`, then `decode_frame`, as gRPC would) into the other link: the same
frames, sequence checks, counters and dealer protocol as over gRPC, without sockets,
TLS or processes. Each party runs in its own thread, bound to its own `Party`
(`party_context`), so CrypTen's globals answer per thread; the dealer runs
`plane_dealer.serve_dealer` in another. Results equal the gRPC plane's by construction
(`tests/mpcnode/worker/test_plane_memory.py` checks values, rounds and bytes).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from mpcnode.worker import party_context
from mpcnode.worker.grpc_plane import GrpcCommunicator
from mpcnode.worker.lifetime import Deadline
from mpcnode.worker.plane_codec import Frame, decode_frame, encode_frame
from mpcnode.worker.plane_dealer import serve_dealer
from mpcnode.worker.plane_install import start_party
from mpcnode.worker.plane_links import PeerLink, pump
from mpcnode.worker.plane_session import PlaneConfig, PlaneSession

T = TypeVar("T")


def _wire(frames: Iterator[object]) -> Iterator[Frame]:
    for frame in frames:
        yield decode_frame(encode_frame(frame))  # type: ignore[arg-type]


def _sessions(world_size: int, deadline: Deadline, job_id: str) -> list[PlaneSession]:
    """Sessions of ranks 0..world_size (the last the dealer), every pair linked."""
    members = tuple(f"node{i}" for i in range(world_size))
    addresses = tuple(f"memory:{i}" for i in range(world_size))
    sessions = [PlaneSession(PlaneConfig(job_id=job_id, rank=rank, world_size=world_size, addresses=addresses,
                                         members=members, certs_dir=Path(), deadline=deadline))
                for rank in range(world_size + 1)]
    for low in range(world_size):
        for high in range(low + 1, world_size + 1):
            a, b = sessions[low], sessions[high]
            a.links[high] = PeerLink(a.config.member_of(high), high, deadline)
            b.links[low] = PeerLink(b.config.member_of(low), low, deadline)
            for sender, receiver in ((a.links[high], b.links[low]), (b.links[low], a.links[high])):
                threading.Thread(target=pump, args=(receiver, _wire(sender.outgoing())), daemon=True,
                                 name=f"memory-{sender.rank}-{receiver.rank}").start()
    return sessions


def run_parties(world_size: int, protocol: Callable[[int], T], *, deadline_s: float = 120.0,
                job_id: str = "memory-job") -> list[T]:
    """Run `protocol(rank)` as each of `world_size` parties (threads) with the dealer;
    returns each party's result in rank order, or raises the first party's error.
    The parties read CrypTen's configuration as a worker sets it (TTP provider, counted
    communication, a read-fast view); the process's own is left as it was."""
    from mpcnode.worker.crypten_config_view import ConfigView, merged, view_of
    from mutualmind.crypten_compat import crypten

    TrustedThirdParty = crypten.mpc.provider.ttp_provider.TrustedThirdParty
    own = crypten.cfg.config
    config = merged(own if isinstance(own, ConfigView) else view_of(own),
                    {"mpc.provider": "TTP", "communicator.verbose": True})
    sessions = _sessions(world_size, Deadline.after(deadline_s), job_id)
    results: list[T | None] = [None] * world_size
    errors: list[BaseException] = []
    party_context.install(per_thread_config=config)

    def party(rank: int) -> None:
        member = party_context.Party(GrpcCommunicator(sessions[rank]), provider=TrustedThirdParty())
        try:
            start_party(member, sessions[rank], with_dealer=True)
            with party_context.bound(member):
                results[rank] = protocol(rank)
        except BaseException as err:
            errors.append(err)
        finally:
            member.communicator.close()

    def dealer() -> None:
        try:
            serve_dealer(sessions[world_size])
        except BaseException as err:
            errors.append(err)
        finally:
            sessions[world_size].close()

    threads = [threading.Thread(target=party, args=(rank,), name=f"party-{rank}") for rank in range(world_size)]
    threads.append(threading.Thread(target=dealer, name="dealer"))
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        party_context.uninstall()
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]
