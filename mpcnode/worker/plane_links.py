"""One ordered, authenticated link to one peer of an MPC job: frames out, frames in.

The gRPC data plane (issue 12) carries each pair of parties' traffic on one
bidirectional stream. This module is the part of a link that knows no gRPC: it numbers
outgoing frames, checks the numbers of incoming ones (a frame out of order or replayed
ends the job: TLS already orders the bytes, so a gap means a peer that misbehaves),
and turns tensors into raw little-endian bytes with dtype and shape in a typed header
and back, never unpickling anything. The wire modules (`plane_servicer`, `plane_client`)
feed `deliver` from the stream and drain `outgoing` into it.

Errors stick: once a link has failed (peer gone, bad frame), every later receive on it
raises the same typed error naming the member, so a job fails with the first cause.
"""

from __future__ import annotations

import math
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from mpcnode.worker.lifetime import Deadline
from mpcnode.worker.plane_codec import Frame, TensorChunk, body_of, tensor_frame
from mutualmind.errors import DeadlineExceeded, IntegrityError, MutualMindError, Unavailable
from proto import plane_pb2

# wire dtype name -> (torch dtype, little-endian numpy dtype)
DTYPES: dict[str, tuple[torch.dtype, str]] = {
    "int64": (torch.int64, "<i8"),
    "int32": (torch.int32, "<i4"),
    "int8": (torch.int8, "i1"),
    "uint8": (torch.uint8, "u1"),
    "bool": (torch.bool, "?"),
    "float32": (torch.float32, "<f4"),
    "float64": (torch.float64, "<f8"),
}
_NAMES = {torch_dtype: name for name, (torch_dtype, _) in DTYPES.items()}
CHUNK_BYTES = 2 << 20          # well below the channel's 8 MiB message limit
MAX_TENSOR_BYTES = 1 << 31     # a larger tensor is refused before it is buffered
MAX_DIMS = 8


@dataclass(frozen=True)
class _Tensor:
    """A tensor queued to be framed as the stream takes it: wire dtype, shape, its bytes
    (little-endian) and the sequence number reserved for its first frame."""

    dtype: str
    shape: list[int]
    array: np.ndarray
    seq: int


def _chunks(array: np.ndarray) -> list[memoryview]:
    """`array`'s bytes in CHUNK_BYTES pieces (one empty piece for an empty tensor)."""
    view = array.reshape(-1).view(np.uint8).data
    return [view[start : start + CHUNK_BYTES] for start in range(0, len(view), CHUNK_BYTES)] or [view]


def _frames(dtype: str, shape: list[int], chunks: list[memoryview], seq: int) -> Iterator[bytes]:
    """The encoded frames of one tensor, numbered from `seq` (header fields in the first)."""
    last = len(chunks) - 1
    for index, chunk in enumerate(chunks):
        first = index == 0
        yield tensor_frame(seq + index, dtype if first else "", shape if first else [], chunk, index < last)


def wire_view(tensor: torch.Tensor) -> np.ndarray:
    """`tensor`'s values as they go on the wire (little-endian, C order): a view of its own
    memory when it is laid out so already - no copy, so the caller must leave the tensor
    alone until it is framed - else a snapshot."""
    if (tensor.dtype in _NAMES and tensor.is_contiguous() and tensor.device.type == "cpu"
            and not tensor.requires_grad and sys.byteorder == "little"):
        return tensor.numpy()
    return take_snapshot(tensor)


def take_snapshot(tensor: torch.Tensor) -> np.ndarray:
    """A little-endian, C-order copy of `tensor`'s values, to send (once) to any peers."""
    name = _NAMES.get(tensor.dtype)
    if name is None:
        raise IntegrityError(f"the data plane carries no {tensor.dtype} tensors")
    return np.array(tensor.detach().cpu().numpy(), dtype=DTYPES[name][1], order="C", copy=True)


class PeerLink:
    """The link to the party of rank `rank`, whose certificate names `member`."""

    def __init__(self, member: str, rank: int, deadline: Deadline) -> None:
        self.member = member
        self.rank = rank
        self.deadline = deadline   # the job's: no receive waits past it
        # frames (messages, or a tensor's encoded frames), tensors still to be framed (as
        # the stream takes them), or None (end); numbered as they are queued
        self._out: queue.SimpleQueue[plane_pb2.PlaneFrame | list[bytes] | _Tensor | None] = queue.SimpleQueue()
        self._send_seq = 1   # 0 is the hello, sent by the wire module
        self._send_lock = threading.Lock()
        self._in: queue.SimpleQueue[Frame | MutualMindError] = queue.SimpleQueue()
        self._recv_seq = 1
        self._error: MutualMindError | None = None
        self.closed = threading.Event()     # the peer ended its side of the stream

    # -- outgoing ---------------------------------------------------------------
    def outgoing(self) -> Iterator[plane_pb2.PlaneFrame | bytes]:
        """Frames to put on the stream, in the order queued; ends after `close`."""
        while True:
            item = self._out.get()
            if item is None:
                return
            if isinstance(item, _Tensor):
                yield from _frames(item.dtype, item.shape, _chunks(item.array), item.seq)
            elif isinstance(item, list):
                yield from item
            else:
                yield item

    def _put(self, **body: object) -> None:
        with self._send_lock:   # numbered and queued in one step: the queue keeps their order
            self._out.put(plane_pb2.PlaneFrame(seq=self._send_seq, **body))  # type: ignore[arg-type]
            self._send_seq += 1

    def send_tensor(self, tensor: torch.Tensor, array: np.ndarray | None = None) -> None:
        """Queue `tensor`, framed now: each frame encoded straight from `array` (default
        `wire_view(tensor)`, the tensor's own memory when it is laid out for the wire),
        one copy of the bytes per peer. The caller may change the tensor once this returns.
        (Framing only as the stream took each frame needed a snapshot first, a copy more.)"""
        name = _NAMES.get(tensor.dtype)
        if name is None:
            raise IntegrityError(f"the data plane carries no {tensor.dtype} tensors")
        chunks = _chunks(wire_view(tensor) if array is None else array)
        with self._send_lock:
            frames = list(_frames(name, list(tensor.shape), chunks, self._send_seq))
            self._send_seq += len(frames)
            self._out.put(frames)

    def send_tensor_later(self, tensor: torch.Tensor, array: np.ndarray) -> None:
        """Queue `tensor` to be framed from `array` only as the stream takes each frame: no
        copy until then, and a few frames in memory at a time. The caller must leave
        `array`'s memory alone until every frame is out (`GrpcCommunicator._send_pieces`
        says when that holds)."""
        name = _NAMES.get(tensor.dtype)
        if name is None:
            raise IntegrityError(f"the data plane carries no {tensor.dtype} tensors")
        with self._send_lock:
            self._out.put(_Tensor(name, list(tensor.shape), array, self._send_seq))
            self._send_seq += len(_chunks(array))

    def send_control(self, kind: int, values: tuple[int, ...] = ()) -> None:
        self._put(control=plane_pb2.PlaneControl(kind=kind, values=list(values)))  # type: ignore[arg-type]

    def send_dealer_request(self, request: plane_pb2.DealerRequest) -> None:
        self._put(dealer_request=request)

    def close(self) -> None:
        """End our side of the stream once every queued frame is out."""
        self._out.put(None)

    # -- incoming ---------------------------------------------------------------
    def deliver(self, frame: Frame) -> None:
        """Accept the next frame from the stream (reader thread); refuse a bad number."""
        if frame.seq != self._recv_seq:
            what = "replayed" if frame.seq < self._recv_seq else "out of order"
            raise IntegrityError(
                f"{self.member} (rank {self.rank}) sent data-plane message {frame.seq} where "
                f"{self._recv_seq} was due ({what}); the job stops and nothing is written")
        self._recv_seq += 1
        self._in.put(frame)

    def fail(self, error: MutualMindError) -> None:
        """The stream broke (reader thread): every later receive raises `error`."""
        self._in.put(error)

    def next_frame(self) -> Frame:
        """The next frame; waits until the job's deadline at most. A peer that is alive
        (answers keepalive pings) but silent fails the job then, named."""
        if self._error is not None:
            raise self._error
        try:
            item = self._in.get(timeout=self.deadline.left_s())
        except queue.Empty:
            self._error = DeadlineExceeded(
                f"{self.member} (rank {self.rank}) had not sent what this party waited for on the data "
                f"plane by the job's deadline of {self.deadline.seconds:g} s: it stalled, stopped or its "
                "link is down; re-run once every member is up")
            raise self._error from None
        if isinstance(item, MutualMindError):
            self._error = item
            raise item
        return item

    def recv_tensor(self, like: torch.Tensor | None = None) -> torch.Tensor:
        """The next tensor from this peer; with `like`, it must have like's dtype and number
        of elements (as over gloo, which matches byte counts: CrypTen sends its seed as a
        scalar into a one-element tensor) and takes like's shape."""
        # filled chunk by chunk: the only whole copy is the result (frames are dropped as read)
        received: list[tuple[np.ndarray, str, tuple[int, ...]]] = []

        def start(numpy_dtype: str, shape: tuple[int, ...], nbytes: int) -> Callable[[int, memoryview], None]:
            flat = np.empty(nbytes, dtype=np.uint8)
            received.append((flat, numpy_dtype, shape))

            def put(at: int, data: memoryview) -> None:
                flat[at : at + len(data)] = data
            return put

        self._read_tensor(like, start)
        flat, numpy_dtype, shape = received[0]
        array = flat.view(numpy_dtype).reshape(shape if like is None else tuple(like.shape))
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        return torch.from_numpy(array)

    def recv_into(self, out: torch.Tensor, combine: Callable[..., object] | None = None) -> None:
        """The next tensor from this peer (out's dtype and number of elements), written
        into `out` - or, with `combine` (a numpy ufunc: np.add, np.bitwise_xor), combined
        into it in place - chunk by chunk, straight from the received frames: no buffer
        of its own, no second copy. `out` must be contiguous."""
        if not out.is_contiguous() or sys.byteorder != "little":   # the general way, with a copy
            value = self.recv_tensor(out)
            if combine is None:
                out.copy_(value)
            else:
                mine = out.contiguous().numpy()
                combine(mine, value.numpy(), out=mine)
                out.copy_(torch.from_numpy(mine))
            return
        target = out.detach().numpy().reshape(-1)   # a view of out's memory
        raw = target.view(np.uint8)
        item = target.itemsize

        def start(numpy_dtype: str, shape: tuple[int, ...], nbytes: int) -> Callable[[int, memoryview], None]:
            if combine is None:
                def put(at: int, data: memoryview) -> None:
                    raw[at : at + len(data)] = data
                return put

            def combine_chunk(at: int, data: memoryview) -> None:
                if at % item or len(data) % item:
                    raise self._bad(f"a chunk of {len(data)} bytes at byte {at}, splitting an element")
                part = target[at // item : (at + len(data)) // item]
                combine(part, np.frombuffer(data, dtype=target.dtype), out=part)
            return combine_chunk

        self._read_tensor(out, start)

    def _read_tensor(self, like: torch.Tensor | None,
                     start: Callable[[str, tuple[int, ...], int], Callable[[int, memoryview], None]]) -> None:
        """Read one tensor's frames: check its header (and against `like`), call `start`
        with its numpy dtype, shape and size, then feed each chunk's bytes to what it
        returned, at their offset; refuse more or fewer bytes than the header says."""
        header = self.next_frame()
        if not isinstance(header, TensorChunk):
            raise self._unexpected(header, "a tensor")
        if header.dtype not in DTYPES or len(header.shape) > MAX_DIMS or any(d < 0 for d in header.shape):
            raise self._bad(f"a tensor header ({header.dtype!r}, shape {list(header.shape)}) the plane does not carry")
        torch_dtype, numpy_dtype = DTYPES[header.dtype]
        shape = tuple(int(d) for d in header.shape)
        expected_bytes = math.prod(shape) * np.dtype(numpy_dtype).itemsize
        if expected_bytes > MAX_TENSOR_BYTES:
            raise self._bad(f"a tensor of {expected_bytes} bytes, over the {MAX_TENSOR_BYTES}-byte limit")
        if like is not None and (like.dtype != torch_dtype or like.numel() != math.prod(shape)):
            raise self._bad(f"a {header.dtype} tensor of shape {list(shape)} where a {like.dtype} "
                            f"tensor of shape {list(like.shape)} was due")
        put = start(numpy_dtype, shape, expected_bytes)
        received = 0
        chunk = header
        while True:
            data = chunk.data
            if received + len(data) > expected_bytes:
                raise self._bad(f"more than {expected_bytes} bytes for a tensor of shape {list(shape)}")
            put(received, data)
            received += len(data)
            if not chunk.more:
                break
            frame = self.next_frame()
            if not isinstance(frame, TensorChunk) or frame.dtype or frame.shape:
                raise self._unexpected(frame, "the next chunk of a tensor")
            chunk = frame
        if received != expected_bytes:
            raise self._bad(f"{received} bytes for a tensor of shape {list(shape)} ({expected_bytes} bytes)")

    def recv_control(self, kind: int) -> tuple[int, ...]:
        frame = self.next_frame()
        if isinstance(frame, TensorChunk) or frame.WhichOneof("body") != "control" or frame.control.kind != kind:
            raise self._unexpected(frame, f"control {plane_pb2.PlaneControl.Kind.Name(kind)}")  # type: ignore[arg-type]
        return tuple(frame.control.values)

    def _bad(self, what: str) -> IntegrityError:
        self._error = IntegrityError(f"{self.member} (rank {self.rank}) sent {what}; the job stops")
        return self._error

    def _unexpected(self, frame: Frame, due: str) -> IntegrityError:
        body = body_of(frame)
        if body == "control" and isinstance(frame, plane_pb2.PlaneFrame):
            body = f"control {plane_pb2.PlaneControl.Kind.Name(frame.control.kind)}"
        return self._bad(f"{body} where {due} was due")


def pump(link: PeerLink, frames: Iterator[Frame]) -> None:
    """Deliver `frames` (a stream's inbound side, after the hello) into `link` until the
    stream ends or a frame is refused; run in its own thread."""
    try:
        for frame in frames:
            link.deliver(frame)
    except (Unavailable, DeadlineExceeded) as err:   # the stream broke: say with whom
        link.fail(Unavailable(f"the data-plane stream with {link.member} (rank {link.rank}) broke: "
                              f"{err.message}; its host or link may be down - re-run once it is back"))
    except MutualMindError as err:
        link.fail(err)
    except Exception as err:  # the wire module's translation missed it: still fail cleanly
        link.fail(Unavailable(f"the data-plane stream with {link.member} broke ({type(err).__name__}: {err})"))
    else:
        # the far end hung up mid-job: the dialer's keepalive gave up first, or it stopped
        link.fail(Unavailable(f"the data-plane stream with {link.member} (rank {link.rank}) was closed by "
                              f"that member before the job ended; its host or link may be down - re-run once it is back"))
    finally:
        link.closed.set()
