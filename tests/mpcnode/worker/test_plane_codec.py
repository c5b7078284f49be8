"""Issue 12: the data plane's own frame codec and its large-message all_reduce.

The codec writes a tensor chunk's protobuf encoding by hand (one copy) and reads it
back as a view (no copy); what it writes must be a valid `PlaneFrame` for the generated
code, and whatever it cannot split must go through protobuf in full. The all_reduce of
large tensors goes reduce-scatter + all-gather: run here by three real sessions over
mutual TLS in one process, its results must equal the plain sum at every party.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from torch.distributed import ReduceOp

from mpcnode.worker.grpc_plane import SPLIT_BYTES, GrpcCommunicator
from mpcnode.worker.lifetime import Deadline
from mpcnode.worker.plane_codec import TensorChunk, decode_frame, encode_frame, tensor_frame
from mpcnode.worker.plane_session import PlaneConfig, PlaneSession
from mutualmind.errors import IntegrityError
from proto import plane_pb2
from tests.certs import ClusterCertsFactory
from tests.mpcnode.worker.cluster import free_port


def test_a_hand_encoded_tensor_frame_is_a_valid_plane_frame_and_reads_back_as_a_view() -> None:
    data = bytes(range(256)) * 3
    raw = tensor_frame(300, "int64", [8, 12], memoryview(data), more=True)
    parsed = plane_pb2.PlaneFrame.FromString(raw)           # the generated code agrees
    assert (parsed.seq, parsed.tensor.dtype, list(parsed.tensor.shape), parsed.tensor.more) == (300, "int64", [8, 12], True)
    assert parsed.tensor.data == data
    chunk = decode_frame(raw)
    assert isinstance(chunk, TensorChunk) and isinstance(chunk.data, memoryview)
    assert (chunk.seq, chunk.dtype, chunk.shape, chunk.more, bytes(chunk.data)) == (300, "int64", (8, 12), True, data)
    assert encode_frame(raw) is raw


def test_frames_of_any_other_layout_go_through_protobuf() -> None:
    # the generated encoding (data before `more`), a control, a tensor with an unknown field after data
    generated = plane_pb2.PlaneFrame(seq=5, tensor=plane_pb2.PlaneTensor(dtype="int8", shape=[2], data=b"ab", more=True))
    chunk = decode_frame(encode_frame(generated))
    assert isinstance(chunk, TensorChunk) and (chunk.seq, chunk.shape, bytes(chunk.data), chunk.more) == (5, (2,), b"ab", True)
    control = plane_pb2.PlaneFrame(seq=2, control=plane_pb2.PlaneControl(kind=plane_pb2.PlaneControl.SIZE, values=[3]))
    assert decode_frame(control.SerializeToString()) == control
    trailing = tensor_frame(1, "int8", [1], memoryview(b"x"), more=False)
    # the tensor field grown by one unknown varint field (99) after data: protobuf parses it
    inner = trailing[4:]
    assert trailing[:4] == b"\x08\x01\x1a" + bytes([len(inner)])
    grown = inner + b"\x98\x06\x01"
    odd = b"\x08\x01\x1a" + bytes([len(grown)]) + grown
    chunk = decode_frame(odd)
    assert isinstance(chunk, TensorChunk) and bytes(chunk.data) == b"x"


def test_a_frame_that_is_not_a_plane_frame_is_refused() -> None:
    with pytest.raises(IntegrityError, match="not a PlaneFrame"):
        decode_frame(b"\x08\x01\x1a\x10\x1a\x05ab")            # tensor length past the end


def _sessions(certs: Path, world: int) -> list[PlaneSession]:
    addresses = tuple(f"127.0.0.1:{free_port()}" for _ in range(world))
    configs = [PlaneConfig(job_id="job-a", rank=r, world_size=world, addresses=addresses,
                           members=tuple(f"node{i}" for i in range(world)), certs_dir=certs,
                           with_dealer=False, connect_timeout_s=20.0, deadline=Deadline.after(30.0))
               for r in range(world)]
    with ThreadPoolExecutor(world) as pool:
        return list(pool.map(PlaneSession.connect, configs))


def test_large_and_small_all_reduces_equal_the_sum_at_every_party(cluster_certs: ClusterCertsFactory) -> None:
    world = 3
    sessions = _sessions(cluster_certs(world).folder, world)
    large = SPLIT_BYTES // 8 + 7                          # not a multiple of 3: uneven pieces
    generator = torch.Generator().manual_seed(3)
    inputs = [[torch.randint(-(2**62), 2**62, (large // 5, 5), generator=generator),  # split
               torch.randint(-(2**62), 2**62, (4, 3), generator=generator)]            # direct
              for _ in range(world)]
    wraps = [sum(inputs[r][i] for r in range(world)) for i in range(2)]   # int64 sums wrap, as shares do
    originals = [[t.clone() for t in tensors] for tensors in inputs]
    try:
        def party(rank: int) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
            comm = GrpcCommunicator(sessions[rank])
            batched = comm.all_reduce(inputs[rank], batched=True)
            single = comm.all_reduce(inputs[rank][0])
            xor = comm.all_reduce(inputs[rank][0], op=ReduceOp.BXOR)    # binary shares' reduction
            return batched, single, xor

        with ThreadPoolExecutor(world) as pool:
            results = list(pool.map(party, range(world)))
        xored = inputs[0][0] ^ inputs[1][0] ^ inputs[2][0]
        for batched, single, xor in results:
            assert [t.shape for t in batched] == [t.shape for t in wraps]
            assert all(torch.equal(got, want) for got, want in zip(batched, wraps))
            assert torch.equal(single, wraps[0])
            assert torch.equal(xor, xored)
        # the inputs are the parties' own: untouched
        assert all(torch.equal(a, b) for mine, kept in zip(inputs, originals) for a, b in zip(mine, kept))
    finally:
        with ThreadPoolExecutor(world) as pool:
            list(pool.map(lambda s: s.close(wait_s=2.0), sessions))
