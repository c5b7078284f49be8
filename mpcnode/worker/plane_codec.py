"""Frames of the MPC data plane on the wire, with one copy of a tensor's bytes each way.

The generated protobuf code copies a tensor chunk's bytes several times per frame: out
of the tensor into `bytes`, into the message, into the serialised string; and back in,
into the parsed message and out again on every read of `.data`. On a 2^19-row job that
made the gRPC plane 1.4-1.6x slower than gloo (issue 12), all of it CPU spent copying.
This module is the plane's serialiser and deserialiser (passed to gRPC in place of
`PlaneFrame.SerializeToString` / `FromString`):

- out, a tensor chunk is written as its protobuf encoding by hand - the frame's `seq`,
  then the `tensor` field holding the header fields (serialised by protobuf) followed
  by `data` - in one `bytes.join` straight from the snapshot's memory;
- in, a frame that ends with a `tensor` whose last field is `data` is split there: the
  header is parsed by protobuf, the data stays a view of the received buffer. Any other
  layout is parsed by protobuf in full, so what a peer can send is exactly what the
  schema allows; the fast path only skips copies, never a check.

The bytes on the wire are a valid `PlaneFrame` either way (fields in any order are
valid protobuf), so each side may use the generated code or this one.
"""

from __future__ import annotations

from dataclasses import dataclass

from mutualmind.errors import IntegrityError
from proto import plane_pb2

_SEQ_TAG = b"\x08"        # PlaneFrame.seq: field 1, varint
_TENSOR_TAG = b"\x1a"     # PlaneFrame.tensor: field 3, length-delimited
_DATA_TAG = b"\x1a"       # PlaneTensor.data: field 3, length-delimited
_FIELD_TENSOR = 3
_FIELD_DATA = 3


@dataclass(frozen=True)
class TensorChunk:
    """A received tensor frame: header fields and a read-only view of the data bytes."""

    seq: int
    dtype: str
    shape: tuple[int, ...]
    data: memoryview
    more: bool


Frame = plane_pb2.PlaneFrame | TensorChunk


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def tensor_frame(seq: int, dtype: str, shape: list[int], data: memoryview, more: bool) -> bytes:
    """The encoded `PlaneFrame(seq, tensor=PlaneTensor(dtype, shape, data, more))`."""
    header = plane_pb2.PlaneTensor(dtype=dtype, shape=shape, more=more).SerializeToString()
    data_prefix = _DATA_TAG + _varint(len(data))
    inner = len(header) + len(data_prefix) + len(data)
    prefix = b"".join((_SEQ_TAG, _varint(seq), _TENSOR_TAG, _varint(inner), header, data_prefix))
    return b"".join((prefix, data))


def encode_frame(frame: plane_pb2.PlaneFrame | bytes) -> bytes:
    """gRPC's serialiser: an already encoded tensor frame as it is, a message serialised."""
    if isinstance(frame, bytes):
        return frame
    return frame.SerializeToString()


def _read_varint(buf: memoryview, pos: int, end: int) -> tuple[int, int] | None:
    value = shift = 0
    while pos < end and shift < 64:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None


def _split_tensor(raw: bytes) -> TensorChunk | None:
    """The fast path (see module docstring), or None to parse with protobuf."""
    buf = memoryview(raw)
    end = len(buf)
    if end < 2 or buf[0] != _SEQ_TAG[0]:
        return None
    read = _read_varint(buf, 1, end)
    if read is None:
        return None
    seq, pos = read
    if pos >= end or buf[pos] != _TENSOR_TAG[0]:
        return None
    read = _read_varint(buf, pos + 1, end)
    if read is None or read[1] + read[0] != end:
        return None                          # the tensor field must be the frame's last
    pos = read[1]
    start = pos
    data_at = -1                             # where the last field (data?) starts
    data_from = data_to = 0
    while pos < end:                         # walk the tensor's fields
        field_at = pos
        read = _read_varint(buf, pos, end)
        if read is None:
            return None
        tag, pos = read
        wire = tag & 7
        if wire == 0:
            read = _read_varint(buf, pos, end)
            if read is None:
                return None
            pos = read[1]
            data_at = -1
        elif wire == 2:
            read = _read_varint(buf, pos, end)
            if read is None or read[1] + read[0] > end:
                return None
            length, pos = read
            if tag >> 3 == _FIELD_DATA:
                data_at, data_from, data_to = field_at, pos, pos + length
            else:
                data_at = -1
            pos += length
        else:
            return None                      # fixed-width or group fields: let protobuf judge
    if data_at < 0 or data_to != end:
        return None
    try:
        header = plane_pb2.PlaneTensor.FromString(buf[start:data_at])
    except Exception:
        return None
    return TensorChunk(seq=seq, dtype=header.dtype, shape=tuple(header.shape),
                       data=buf[data_from:data_to], more=header.more)


def decode_frame(raw: bytes) -> Frame:
    """gRPC's deserialiser for the plane: a `TensorChunk` for a tensor frame, else the
    parsed `PlaneFrame`. A frame protobuf cannot parse ends the stream (typed error)."""
    chunk = _split_tensor(raw)
    if chunk is not None:
        return chunk
    try:
        frame = plane_pb2.PlaneFrame.FromString(raw)
    except Exception as err:
        raise IntegrityError(f"a data-plane frame that is not a PlaneFrame ({err})") from None
    if frame.WhichOneof("body") == "tensor":
        tensor = frame.tensor
        return TensorChunk(seq=frame.seq, dtype=tensor.dtype, shape=tuple(tensor.shape),
                           data=memoryview(tensor.data), more=tensor.more)
    return frame


def body_of(frame: Frame) -> str | None:
    """What a frame carries: 'tensor', 'control', 'dealer_request', 'hello' or None."""
    if isinstance(frame, TensorChunk):
        return "tensor"
    return frame.WhichOneof("body")
