"""One party's set of data-plane links for one job, and the rules for who may join it.

Topology: the party of higher rank dials the lower one, so node r listens (on its MPC
port, mutual TLS) for nodes r+1..n-1 and the dealer (rank n), and dials nodes 0..r-1;
the dealer only dials. A job on three hosts therefore needs each node's MPC port open
to the other nodes and the dealer, and nothing open on the dealer.

Who may join is checked twice, by certificate and by hello: the dialler pins the
member name it expects at that rank (the TLS handshake fails otherwise); the listener
accepts a stream only if the caller's verified certificate names the member of the
rank its hello claims, with that member's role, for this very job, addressed to this
rank, once. The first refusal fails the job at once with a message naming the member.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mpcnode.worker.lifetime import Deadline
from mpcnode.worker.plane_codec import Frame, body_of
from mpcnode.worker.plane_keepalive import KEEPALIVE_S
from mpcnode.worker.plane_links import PeerLink
from mutualmind.errors import (
    DeadlineExceeded,
    IntegrityError,
    MutualMindError,
    PermissionDenied,
    Unavailable,
)
from mutualmind.transport.pki import DEALER_NAME
from mutualmind.vocabulary.deadlines import MAX_JOB_S
from proto import plane_pb2

CLOSE_WAIT_S = 10.0


@dataclass(frozen=True)
class PlaneConfig:
    """Where and as whom one party of one job talks.

    `rank` is world_size for the dealer. `addresses[i]` is node rank i's MPC listen
    address (host:port, from the job request / cluster manifest) and `members[i]` the
    certificate name that must hold it.
    """

    job_id: str
    rank: int
    world_size: int
    addresses: tuple[str, ...]
    members: tuple[str, ...]
    certs_dir: Path
    with_dealer: bool = True
    connect_timeout_s: float = 60.0
    # the job's deadline (`lifetime.bind_to_parent_and_deadline`): no wait for a peer -
    # to join, or for its next message - lasts past it, so a party waiting on a silent
    # peer fails naming it by the job's own deadline; None (benchmarks, tests): MAX_JOB_S
    deadline: Deadline | None = None
    keepalive_s: float = KEEPALIVE_S     # a vanished peer is dropped after ~2x this

    def member_of(self, rank: int) -> str:
        return DEALER_NAME if rank == self.world_size else self.members[rank]

    def role_of(self, rank: int) -> str:
        return "dealer" if rank == self.world_size else "node"

    @property
    def member(self) -> str:
        return self.member_of(self.rank)

    def inbound(self) -> list[int]:
        """Ranks that dial this party."""
        if self.rank == self.world_size:
            return []
        return list(range(self.rank + 1, self.world_size)) + ([self.world_size] if self.with_dealer else [])

    def check(self) -> None:
        if len(self.addresses) != self.world_size or len(self.members) != self.world_size:
            raise IntegrityError(f"the data plane needs {self.world_size} node addresses and member names, "
                                 f"got {len(self.addresses)} and {len(self.members)}")
        if not 0 <= self.rank <= self.world_size:
            raise IntegrityError(f"rank {self.rank} is outside [0, {self.world_size}]")


@dataclass
class _Dial:
    """One lower rank `_connect` dials, and how that went (`error` None: joined)."""

    rank: int
    done: bool = False
    error: BaseException | None = None


class PlaneSession:
    """Every link of this party, connected; `close` ends them all after the last frame."""

    def __init__(self, config: PlaneConfig) -> None:
        config.check()
        self.config = config
        self.deadline = config.deadline or Deadline.after(MAX_JOB_S)
        self.links: dict[int, PeerLink] = {}
        self._changed = threading.Condition()
        self._refusal: MutualMindError | None = None
        self._closers: list[Callable[[], object]] = []
        self._closed = False

    @classmethod
    def connect(cls, config: PlaneConfig) -> PlaneSession:
        session = cls(config)
        try:
            session._connect()
        except BaseException:
            session.close(wait_s=0.0)
            raise
        return session

    def _connect(self) -> None:
        from mpcnode.worker.plane_client import dial
        from mpcnode.worker.plane_servicer import start_plane_server

        config = self.config
        inbound = config.inbound()
        # every lower rank at once, each on its own thread, while this party's listener
        # starts: a join costs about one handshake, not one per peer in turn
        # (bench/plane_join.py); the first failure fails the join at once
        dials = [_Dial(rank) for rank in range(min(config.rank, config.world_size))]
        for attempt in dials:
            threading.Thread(target=self._dial, args=(attempt, dial), daemon=True,
                             name=f"plane-dial-{config.member_of(attempt.rank)}").start()
        if inbound:
            server = start_plane_server(config.addresses[config.rank], config.certs_dir, config.member,
                                        self._accept, self._answer, streams=len(inbound),
                                        keepalive_s=config.keepalive_s)
            self._add_closer(lambda: server.stop(grace=1.0))
        with self._changed:
            while not all(d.done for d in dials) and not any(d.error for d in dials):
                self._changed.wait()
        failed = [d.error for d in dials if d.error is not None]
        if failed:
            raise failed[0]
        window_s, by_deadline = self._join_window()
        deadline = time.monotonic() + window_s
        with self._changed:
            while True:
                if self._refusal is not None:
                    raise self._refusal
                missing = [r for r in inbound if r not in self.links]
                if not missing:
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    names = ", ".join(f"{config.member_of(r)} (rank {r})" for r in missing)
                    within = (f"by the job's deadline of {self.deadline.seconds:g} s" if by_deadline
                              else f"within {config.connect_timeout_s:.0f} s")
                    error = DeadlineExceeded if by_deadline else Unavailable
                    raise error(f"{names} did not join job {config.job_id}'s data plane {within}: down, "
                                "unreachable, or without its cluster certificate; re-run once every member is up")
                self._changed.wait(left)

    def _dial(self, attempt: _Dial, dial: Callable[..., Callable[[], None]]) -> None:
        """One dial of `_connect` (on its thread): the link on success, else the error."""
        config, rank = self.config, attempt.rank
        try:
            link = PeerLink(config.member_of(rank), rank, self.deadline)
            hello = plane_pb2.PlaneHello(job_id=config.job_id, from_rank=config.rank, to_rank=rank,
                                         world_size=config.world_size)
            window_s, by_deadline = self._join_window()
            try:
                self._add_closer(dial(config.addresses[rank], config.certs_dir, config.member, link,
                                      hello, self._answer_checker(link), window_s, config.keepalive_s))
            except Unavailable as err:
                if by_deadline:
                    raise DeadlineExceeded(f"{err.message}; the job's deadline of {self.deadline.seconds:g} s "
                                           "left no longer to wait") from None
                raise
            with self._changed:
                self.links[rank] = link
        except BaseException as err:  # noqa: BLE001 - re-raised by `_connect` on the caller's thread
            attempt.error = err
        finally:
            with self._changed:
                attempt.done = True
                self._changed.notify_all()

    def _add_closer(self, closer: Callable[[], object]) -> None:
        """Run `closer` on `close`; at once if the session is closed already (a dial that
        succeeded after another one failed the join)."""
        with self._changed:
            if not self._closed:
                self._closers.append(closer)
                return
        closer()

    def _join_window(self) -> tuple[float, bool]:
        """How long peers may still take to join: the connect timeout, or what is left
        before the job's deadline if that is shorter (then True)."""
        left = self.deadline.left_s()
        return (left, True) if left < self.config.connect_timeout_s else (self.config.connect_timeout_s, False)

    def _accept(self, hello: plane_pb2.PlaneHello, cert_name: str | None, cert_role: str | None) -> PeerLink:
        """The listener's rules (see module docstring); a refusal also fails this job."""
        config = self.config
        claimed = int(hello.from_rank)
        presenter = f"a peer presenting {cert_name}'s certificate" if cert_name else "a peer without a member certificate"
        with self._changed:
            try:
                if hello.job_id != config.job_id:
                    raise PermissionDenied(f"{presenter} asked for job {hello.job_id!r} on the data plane, "
                                           f"but this party runs job {config.job_id!r} only")
                if hello.to_rank != config.rank or hello.world_size != config.world_size:
                    raise PermissionDenied(f"{presenter} addressed rank {hello.to_rank} of {hello.world_size} "
                                           f"parties; this is rank {config.rank} of {config.world_size}")
                if claimed not in config.inbound():
                    raise PermissionDenied(f"{presenter} claimed rank {claimed}, which does not dial rank {config.rank}")
                expected = config.member_of(claimed)
                if cert_name != expected or cert_role != config.role_of(claimed):
                    raise PermissionDenied(f"{presenter} claimed rank {claimed}, which is {expected}'s; "
                                           f"refused: a member may only take its own rank")
                if claimed in self.links:
                    raise PermissionDenied(f"{expected} (rank {claimed}) opened a second data-plane stream "
                                           "for the same job; refused")
            except PermissionDenied as err:
                if self._refusal is None:
                    self._refusal = err
                self._changed.notify_all()
                raise
            link = PeerLink(expected, claimed, self.deadline)
            self.links[claimed] = link
            self._changed.notify_all()
            return link

    def _answer(self, link: PeerLink) -> plane_pb2.PlaneHello:
        return plane_pb2.PlaneHello(job_id=self.config.job_id, from_rank=self.config.rank, to_rank=link.rank,
                                    world_size=self.config.world_size)

    def _answer_checker(self, link: PeerLink) -> Callable[[Frame], None]:
        def check(frame: Frame) -> None:
            if not isinstance(frame, plane_pb2.PlaneFrame) or frame.WhichOneof("body") != "hello":
                raise PermissionDenied(f"{link.member} (rank {link.rank}) answered the data-plane hello "
                                       f"with {body_of(frame)}, not a hello")
            hello = frame.hello
            if (frame.seq != 0 or frame.WhichOneof("body") != "hello" or hello.job_id != self.config.job_id
                    or hello.from_rank != link.rank or hello.to_rank != self.config.rank):
                raise PermissionDenied(f"{link.member} (rank {link.rank}) answered the data-plane hello "
                                       f"for job {hello.job_id!r}, rank {hello.from_rank}; expected job "
                                       f"{self.config.job_id!r}, rank {link.rank}")
        return check

    def link(self, rank: int) -> PeerLink:
        return self.links[rank]

    def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Send what is queued, end our side of every stream, wait (up to `wait_s`) for the
        peers to end theirs - so nothing a peer still needs is cut off - then stop."""
        with self._changed:
            links = list(self.links.values())
        for link in links:
            link.close()
        deadline = time.monotonic() + wait_s
        for link in links:
            link.closed.wait(max(0.0, deadline - time.monotonic()))
        with self._changed:
            self._closed = True
            closers, self._closers = self._closers, []
        for closer in reversed(closers):
            closer()
