"""CrypTen's Communicator over the gRPC data plane (issue 12): no torch.distributed.

Every collective CrypTen calls is built from ordered point-to-point messages on the
job's authenticated links (`plane_session`): all parties run the same sequence of
collectives, so per-peer FIFO order is all the matching a message needs. Each method
carries CrypTen's own `_logging` decorator under the same name and argument layout as
`DistributedCommunicator`, so rounds and bytes are counted exactly as over gloo - the
round counts the tests assert per training step stay what they are.

Object messages are limited to what CrypTen's protocol code sends (a public size or an
integer, as typed control messages); CrypTen's pickled `send_obj`/`recv_obj` exist only
for its TTP, which `plane_dealer` replaces with typed requests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.distributed import ReduceOp  # the enum only: no process group is made

from mpcnode.worker.plane_links import wire_view
from mpcnode.worker.plane_session import PlaneSession
from mutualmind.crypten_compat import crypten
from mutualmind.errors import InvalidInput
from proto import plane_pb2

# CrypTen's base class and its counting decorator (through the compat import, which
# must run before any crypten module)
Communicator = crypten.communicator.Communicator
_logging = crypten.communicator.communicator._logging

Control = plane_pb2.PlaneControl
# all_reduce splits tensors this large (see there): below it, one message latency less
# matters more than the bytes (a 25 ms link moves 1 MiB in well under a round trip)
SPLIT_BYTES = 1 << 20


class _Done:
    """What isend/irecv return: CrypTen only calls `wait()` on it."""

    def __init__(self, finish: Callable[[], None] | None = None) -> None:
        self._finish = finish

    def wait(self) -> None:
        if self._finish is not None:
            finish, self._finish = self._finish, None
            finish()

    def is_completed(self) -> bool:
        return self._finish is None


class GrpcCommunicator(Communicator):  # type: ignore[misc,valid-type]
    """Party `session.config.rank` of `world_size` nodes; the dealer is reached through
    `plane_dealer`, not through these methods. It is passed in, never a global: CrypTen
    finds it through the party bound to the running code (`party_context`). Its links
    are gRPC streams (`plane_session`) or, for tests of the protocol code with every
    party in one process, in-memory pipes through the same codec (`plane_memory`)."""

    BYTES_PER_ELEMENT = 8

    def __init__(self, session: PlaneSession) -> None:
        self.session = session
        self.rank = session.config.rank
        self.world_size = session.config.world_size
        self._name = f"rank{self.rank}"
        self.reset_communication_stats()

    def close(self) -> None:
        """Tell the dealer the job is over (party 0), then close every link in order."""
        dealer = self.session.links.get(self.world_size)
        if self.rank == 0 and dealer is not None:
            dealer.send_control(Control.TERMINATE)
        self.session.close()

    def _peers(self) -> list[int]:
        return [r for r in range(self.world_size) if r != self.rank]

    def _send(self, tensor: torch.Tensor, dst: int) -> None:
        self.session.link(dst).send_tensor(tensor)

    def _send_all(self, tensor: torch.Tensor, dsts: Sequence[int]) -> None:
        """The same tensor to several peers, framed for each from one wire view (the
        tensor's own memory when it is laid out for the wire): one copy per peer."""
        wire = wire_view(tensor)
        for dst in dsts:
            self.session.link(dst).send_tensor(tensor, wire)

    def _recv(self, like: torch.Tensor, src: int) -> torch.Tensor:
        return self.session.link(src).recv_tensor(like)

    # -- point to point -------------------------------------------------------------
    @_logging
    def send(self, tensor: torch.Tensor, dst: int) -> None:
        self._send(tensor, dst)

    @_logging
    def recv(self, tensor: torch.Tensor, src: int | None = None) -> torch.Tensor:
        return self._recv(tensor, _known(src))

    @_logging
    def isend(self, tensor: torch.Tensor, dst: int) -> _Done:
        self._send(tensor, dst)   # queued now; the stream sends it in order
        return _Done()

    @_logging
    def irecv(self, tensor: torch.Tensor, src: int | None = None) -> _Done:
        source = _known(src)

        def finish() -> None:
            tensor.copy_(self._recv(tensor, source))  # CrypTen reads the tensor it passed

        return _Done(finish)

    # -- collectives ----------------------------------------------------------------
    @_logging
    def scatter(self, scatter_list: Sequence[torch.Tensor], src: int, size: Any = None,
                device: Any = None) -> torch.Tensor:
        if src == self.rank:
            for dst in self._peers():
                self._send(scatter_list[dst], dst)
            return scatter_list[self.rank]
        shape = size if size is not None else scatter_list[self.rank].size()
        return self._recv(torch.empty(shape, dtype=torch.long), src)

    @_logging
    def reduce(self, input: Any, dst: int, op: Any = ReduceOp.SUM, batched: bool = False) -> Any:
        tensors = list(input) if batched else [input]
        combine = _combiner(op)
        if self.rank != dst:
            for tensor in tensors:
                self._send(tensor, dst)
            return None
        results = [t.clone() for t in tensors]
        for src in self._peers():
            for index, tensor in enumerate(tensors):
                combine(results[index], self._recv(tensor, src))
        return results if batched else results[0]

    @_logging
    def all_reduce(self, input: Any, op: Any = ReduceOp.SUM, batched: bool = False) -> Any:
        """Small tensors: each party sends its tensor to every peer (one message
        latency). Large ones (SPLIT_BYTES and up, three parties or more): reduce-scatter
        then all-gather - party j sums piece j of every party's tensor and sends that sum
        to the others - so each party sends 2(n-1)/n of the tensor, not n-1 times it
        (2/3 of the bytes for three parties), for one more message latency. A large
        result is written in place as the pieces arrive (`PeerLink.recv_into`): no
        buffer per received piece, no copy after."""
        tensors = list(input) if batched else [input]
        combine = _combiner(op)
        split = [self.world_size > 2 and t.numel() * t.element_size() >= SPLIT_BYTES for t in tensors]
        pieces: list[list[slice]] = []
        for tensor, large in zip(tensors, split):
            if large:
                pieces.append(_pieces(tensor.numel(), self.world_size))
                self._send_pieces(tensor, pieces[-1])
            else:
                pieces.append([])
                self._send_all(tensor, self._peers())
        # every party combines the same terms in rank order (each piece at one party):
        # identical results everywhere; in place into a buffer of its own (a received
        # tensor, a clone, or its piece of the result), as a fresh result per term costs
        # a large allocation and its page faults each time
        results: list[torch.Tensor] = []
        for tensor, large, parts in zip(tensors, split, pieces):
            if large:
                flat = torch.empty(tensor.numel(), dtype=tensor.dtype)
                mine = flat[parts[self.rank]]
                self._reduce_into(mine, tensor.reshape(-1)[parts[self.rank]], op)
                self._send_all(mine, self._peers())
                results.append(flat)
            else:
                results.append(self._combine_from_all(tensor, combine))
        for index, (tensor, large, parts) in enumerate(zip(tensors, split, pieces)):
            if large:
                flat = results[index]
                for src in self._peers():
                    self.session.link(src).recv_into(flat[parts[src]])
                results[index] = flat.reshape(tensor.shape)
        return results if batched else results[0]

    def _send_pieces(self, tensor: torch.Tensor, parts: list[slice]) -> None:
        """Piece j of `tensor` (flattened) to party j, framed from the tensor's own memory
        when it is laid out for the wire (`wire_view`), without a snapshot. That is safe
        here: a peer sends its all-gather piece only once it has received its whole piece
        from this party, and all_reduce returns only once every peer's piece came, so each
        piece sent from here was framed (copied into its frames) before the caller gets
        the tensor back to change it: the pieces are framed as the streams take them
        (`send_tensor_later`), a few frames in memory at a time."""
        wire = wire_view(tensor).reshape(-1)
        flat = tensor.reshape(-1)
        for dst in self._peers():
            self.session.link(dst).send_tensor_later(flat[parts[dst]], wire[parts[dst]])

    def _reduce_into(self, out: torch.Tensor, own: torch.Tensor, op: Any) -> None:
        """`out` = every party's piece of this rank combined in rank order, own included,
        each peer's combined in straight from its frames."""
        combine_np = _numpy_combiner(op)
        if self.rank == 0:
            out.copy_(own)
        else:
            self.session.link(0).recv_into(out)
        for src in range(1, self.world_size):
            if src == self.rank:
                _combiner(op)(out, own)
            else:
                self.session.link(src).recv_into(out, combine_np)

    def _combine_from_all(self, own: torch.Tensor, combine: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """`own` combined with every peer's next tensor of its size, in rank order."""
        total = own.clone() if self.rank == 0 else self._recv(own, 0)
        for src in range(1, self.world_size):
            combine(total, own if src == self.rank else self._recv(own, src))
        return total

    @_logging
    def gather(self, tensor: torch.Tensor, dst: int) -> list[torch.Tensor | None]:
        if self.rank != dst:
            self._send(tensor, dst)
            return [None]
        like = torch.empty(tensor.size(), dtype=torch.long)
        return [tensor.clone() if src == self.rank else self._recv(like, src) for src in range(self.world_size)]

    @_logging
    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        self._send_all(tensor, self._peers())
        like = torch.empty(tensor.size(), dtype=torch.long)
        return [tensor.clone() if src == self.rank else self._recv(like, src) for src in range(self.world_size)]

    @_logging
    def broadcast(self, input: Any, src: int, group: Any = None, batched: bool = False) -> Any:
        if group is not None:
            raise InvalidInput("the gRPC data plane has one group: the job's nodes")
        tensors = list(input) if batched else [input]
        if self.rank == src:
            for tensor in tensors:
                self._send_all(tensor, self._peers())
        else:
            for tensor in tensors:
                tensor.copy_(self._recv(tensor, src))
        return input

    @_logging
    def barrier(self) -> None:
        for dst in self._peers():
            self.session.link(dst).send_control(Control.BARRIER)
        for src in self._peers():
            self.session.link(src).recv_control(Control.BARRIER)

    @_logging
    def broadcast_obj(self, obj: Any, src: int, group: Any = None) -> Any:
        """A public size or integer (all CrypTen's MPC code broadcasts), as typed values."""
        if self.rank == src:
            values = _size_values(obj)
            for dst in self._peers():
                self.session.link(dst).send_control(Control.SIZE, values)
            return obj
        values = self.session.link(src).recv_control(Control.SIZE)
        return torch.Size(values)

    def send_obj(self, obj: Any, dst: int, group: Any = None) -> None:
        raise InvalidInput("the gRPC data plane carries no pickled objects; dealer requests are typed")

    def recv_obj(self, src: int, group: Any = None) -> Any:
        raise InvalidInput("the gRPC data plane carries no pickled objects; dealer requests are typed")

    # -- identity -------------------------------------------------------------------
    def get_world_size(self) -> int:
        return self.world_size

    def get_rank(self) -> int:
        return self.rank

    def get_ttp_rank(self) -> int:
        return self.world_size

    def set_name(self, name: str) -> None:
        if not isinstance(name, str):
            raise InvalidInput(f"party name {name!r} is not a string")
        self._name = name

    def get_name(self) -> str:
        return self._name

    def get_distributed_backend(self) -> str:
        return "grpc"


def _pieces(numel: int, parts: int) -> list[slice]:
    """`parts` contiguous slices covering range(numel), as equal as can be."""
    bounds = [numel * k // parts for k in range(parts + 1)]
    return [slice(bounds[k], bounds[k + 1]) for k in range(parts)]


def _known(src: int | None) -> int:
    if src is None:
        raise InvalidInput("the gRPC data plane receives from a named party only")
    return src


def _combiner(op: Any) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """`op` applied in place into its first argument (always a buffer the caller owns)."""
    if op is None or op == ReduceOp.SUM:
        return torch.Tensor.add_   # int64 wraps: addition in Z/2^64, as the shares need
    if op == ReduceOp.BXOR:
        return torch.Tensor.bitwise_xor_
    raise InvalidInput(f"the gRPC data plane reduces with SUM or BXOR, not {op}")


def _numpy_combiner(op: Any) -> Callable[..., object]:
    """`_combiner` as a numpy ufunc (int64 addition wraps: Z/2^64), for `recv_into`."""
    if op is None or op == ReduceOp.SUM:
        return np.add
    if op == ReduceOp.BXOR:
        return np.bitwise_xor
    raise InvalidInput(f"the gRPC data plane reduces with SUM or BXOR, not {op}")


def _size_values(obj: Any) -> tuple[int, ...]:
    if isinstance(obj, (tuple, list, torch.Size)) and all(isinstance(v, int) for v in obj):
        return tuple(int(v) for v in obj)
    raise InvalidInput(f"the gRPC data plane broadcasts sizes only, not {type(obj).__name__}")

