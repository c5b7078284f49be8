"""CrypTen's trusted third party over the gRPC data plane, with typed requests only.

CrypTen's TTP (`crypten.mpc.provider.ttp_provider`) ships party 0's requests to the
dealer as pickled dicts over torch.distributed. Here party 0 sends a `DealerRequest`
(protobuf) naming only allow-listed kinds (additive triple with op mul|matmul, square,
binary triple, wraps, B2A) and shapes, within limits; the dealer answers with one raw
int64 tensor. The dealer's arithmetic is CrypTen's own (`TTPServer`'s methods, on
generators seeded the way CrypTen seeds them: one secret seed per party, sent to that
party only), so the material is exactly what CrypTen's TTP would make.

Party 0's counters are kept as CrypTen's `DistributedCommunicator` keeps them for one
TTP request (send_obj of the request, recv_obj of the size, broadcast of the result:
three rounds), so a job's rounds and bytes read the same over either plane.
"""

from __future__ import annotations

import math
import secrets
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch

from mpcnode.worker.dealer_prefetch import BATCH_FUNCTION, OPS, dealer_result_size, serve_batch
from mpcnode.worker.plane_codec import body_of
from mpcnode.worker.plane_session import PlaneSession
from mutualmind.errors import IntegrityError, InvalidInput
from proto import plane_pb2

Control = plane_pb2.PlaneControl
KINDS = {
    "additive": plane_pb2.ADDITIVE,
    "square": plane_pb2.SQUARE,
    "binary": plane_pb2.BINARY,
    "wraps": plane_pb2.WRAPS,
    "B2A": plane_pb2.B2A,
}
FUNCTIONS = {kind: name for name, kind in KINDS.items()}
MAX_ITEMS = 1 << 20
MAX_DIMS = 8
MAX_ANSWER_ELEMENTS = 1 << 25      # 256 MiB of int64: MATERIAL_BUDGET_BYTES' worth


def encode_item(function: str, args: Sequence[Any], kwargs: dict[str, Any]) -> plane_pb2.DealerItem:
    """Party 0's side: one CrypTen TTP request as a typed item (nothing else is sent)."""
    if function not in KINDS or kwargs:
        raise InvalidInput(f"the dealer serves {', '.join(KINDS)} without options, not {function!r} {kwargs}")
    if function == "additive":
        if len(args) != 3 or args[2] not in OPS:
            raise InvalidInput(f"the dealer makes Beaver triples for {' and '.join(OPS)} only, not {args[2:]}")
        return plane_pb2.DealerItem(kind=KINDS[function], size0=list(args[0]), size1=list(args[1]), op=args[2])
    if function == "binary":
        return plane_pb2.DealerItem(kind=KINDS[function], size0=list(args[0]), size1=list(args[1]))
    return plane_pb2.DealerItem(kind=KINDS[function], size0=list(args[0]))


def decode_request(request: plane_pb2.DealerRequest) -> list[tuple[str, tuple[Any, ...]]]:
    """The dealer's side: (function, args) per item, or InvalidInput naming what is wrong.

    Every shape is checked (at most MAX_DIMS non-negative dimensions), the answer's size
    computed without computing it and held to MAX_ANSWER_ELEMENTS in all.
    """
    if not 1 <= len(request.items) <= MAX_ITEMS or (not request.batch and len(request.items) != 1):
        raise InvalidInput(f"a dealer request has 1 item, or a batch of 1 to {MAX_ITEMS}")
    decoded: list[tuple[str, tuple[Any, ...]]] = []
    total = 0
    for item in request.items:
        function = FUNCTIONS.get(item.kind)
        if function is None:
            raise InvalidInput(f"dealer request kind {item.kind} is not served")
        shapes = [_shape(item.size0)]
        if function in ("additive", "binary"):
            shapes.append(_shape(item.size1))
        elif item.size1:
            raise InvalidInput(f"a {function} request has one shape")
        if function == "additive":
            if item.op not in OPS:
                raise InvalidInput(f"the dealer makes Beaver triples for {' and '.join(OPS)} only, not {item.op!r}")
            args: tuple[Any, ...] = (*shapes, item.op)
        elif item.op:
            raise InvalidInput(f"a {function} request takes no op")
        else:
            args = tuple(shapes)
        if any(math.prod(s) > MAX_ANSWER_ELEMENTS for s in shapes):
            raise InvalidInput(f"a dealer request shape is over {MAX_ANSWER_ELEMENTS} elements")
        try:
            total += dealer_result_size(function, args).numel()
        except (RuntimeError, ValueError) as err:
            raise InvalidInput(f"dealer request {function} {[list(s) for s in shapes]} has no result ({err})") from None
        if total > MAX_ANSWER_ELEMENTS:
            raise InvalidInput(f"a dealer request may ask for {MAX_ANSWER_ELEMENTS} elements in all")
        decoded.append((function, args))
    return decoded


def _shape(dims: Sequence[int]) -> torch.Size:
    if len(dims) > MAX_DIMS or any(d < 0 or d > MAX_ANSWER_ELEMENTS for d in dims):
        raise InvalidInput(f"dealer request shape {list(dims)} is not a shape the dealer serves")
    return torch.Size(int(d) for d in dims)


class PlaneTTPClient:
    """Stands in for CrypTen's `TTPClient` instance on each party: the generator shared
    with the dealer, and (party 0) typed requests. `dealer_prefetch` may shadow
    `ttp_request` on the instance, as it does on CrypTen's client."""

    def __init__(self, session: PlaneSession, communicator: Any) -> None:
        self._link = session.link(session.config.world_size)
        self._comm = communicator
        (seed,) = self._link.recv_control(Control.SEED)
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(seed)
        self.generator_cuda = None

    def get_generator(self, device: Any = None) -> torch.Generator:
        if device is not None and torch.device(device).type != "cpu":
            raise InvalidInput("the gRPC data plane's dealer material is for the CPU")
        return self.generator

    def ttp_request(self, func_name: str, device: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._comm.get_rank() != 0:
            raise IntegrityError("only party 0 asks the dealer")
        if func_name == BATCH_FUNCTION:
            (requests,) = args
            items = [encode_item(f, a, k) for f, a, k in requests]
            shape = torch.Size([sum(dealer_result_size(f, a).numel() for f, a, _ in requests)])
            request = plane_pb2.DealerRequest(items=items, batch=True)
        else:
            request = plane_pb2.DealerRequest(items=[encode_item(func_name, args, kwargs)])
            shape = dealer_result_size(func_name, args)
        started = time.perf_counter()
        self._link.send_dealer_request(request)
        result = self._link.recv_tensor(torch.empty(shape, dtype=torch.long))
        self._count(func_name, device, args, kwargs, result, time.perf_counter() - started)
        return result

    def _count(self, func_name: str, device: Any, args: Any, kwargs: Any, result: torch.Tensor, seconds: float) -> None:
        """CrypTen's counting of one TTP request on party 0 (see module docstring)."""
        from mutualmind.crypten_compat import crypten

        if not crypten.cfg.communicator.verbose:
            return
        message = {"function": func_name, "device": device, "args": args, "kwargs": kwargs}
        per = self._comm.BYTES_PER_ELEMENT
        self._comm._log_communication(sys.getsizeof(message) / per)      # send_obj(request)
        self._comm._log_communication(sys.getsizeof(result.size()) / per)  # recv_obj(size)
        self._comm._log_communication(result.nelement())                 # broadcast(result)
        self._comm._log_communication_time(seconds)


def serve_dealer(session: PlaneSession) -> None:
    """The dealer's loop for one job: seed each party, answer party 0 until it says the
    job is over (or its stream ends, which raises)."""
    from mutualmind.crypten_compat import crypten

    TTPServer = crypten.mpc.provider.ttp_provider.TTPServer
    world_size = session.config.world_size
    server = TTPServer.__new__(TTPServer)   # CrypTen's arithmetic, without its torch.distributed set-up
    seeds = [secrets.randbits(64) - (1 << 63) for _ in range(world_size)]
    server.generators = [torch.Generator(device="cpu") for _ in range(world_size)]
    for generator, seed in zip(server.generators, seeds):
        generator.manual_seed(seed)
    server.generators_cuda = [None] * world_size
    server.device = "cpu"
    for rank, seed in enumerate(seeds):
        session.link(rank).send_control(Control.SEED, (seed,))
    party0 = session.link(0)
    while True:
        frame = party0.next_frame()
        body = body_of(frame)
        if isinstance(frame, plane_pb2.PlaneFrame) and body == "control" and frame.control.kind == Control.TERMINATE:
            return
        if not isinstance(frame, plane_pb2.PlaneFrame) or body != "dealer_request":
            raise IntegrityError(f"{party0.member} sent {body} where a dealer request or the end of the job was due")
        requests = decode_request(frame.dealer_request)
        if frame.dealer_request.batch:
            answer = serve_batch(server, [(function, args, {}) for function, args in requests])
        else:
            function, args = requests[0]
            answer = getattr(server, function)(*args)
        party0.send_tensor(answer.to(torch.long))
