"""The packed comparison gives `less_than_zero`'s bit exactly, in its rounds, for fewer
bytes: three real CrypTen parties and the dealer, in-process (`plane_memory`)."""

from __future__ import annotations

import pytest
import torch

from mpcnode.worker.plane_memory import run_parties

COUNT = 3000


def _values() -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Edge values, small and full-range ones, and three random shares of them."""
    generator = torch.Generator().manual_seed(5)
    plain = torch.randint(-2**62, 2**62, (COUNT,), generator=generator, dtype=torch.int64)
    edges = [0, -1, 1, 2**62, -2**62, 2**63 - 1, -2**63, 2**16, -2**16, -2**63 + 1]
    plain[:len(edges)] = torch.tensor(edges, dtype=torch.int64)
    plain[len(edges):COUNT // 2] >>= 30
    shares = [torch.randint(-2**63, 2**63 - 1, (COUNT,), generator=generator, dtype=torch.int64) for _ in range(2)]
    return plain, [*shares, plain - shares[0] - shares[1]]


def _protocol(rank: int) -> dict[str, tuple[list[float], int, int]]:
    import crypten.communicator as comm
    from crypten.mpc import MPCTensor

    from mpcnode.worker.comparison import (
        less_than_zero,
        less_than_zero_adder,
        less_than_zero_packed,
    )

    value = MPCTensor.from_shares(_values()[1][rank], precision=0)
    out = {}
    for name, compare in (("adder", less_than_zero_adder), ("packed", less_than_zero_packed),
                          ("chosen", less_than_zero)):
        bit = compare(value)
        comm.get().reset_communication_stats()
        revealed = bit.get_plain_text()   # reveal first: count only the comparison below
        comm.get().reset_communication_stats()
        bit = compare(value)
        stats = comm.get().get_communication_stats()
        out[name] = (revealed.tolist(), int(stats["rounds"]), int(stats["bytes"]))
    return out


def test_the_packed_comparison_is_exact_in_the_same_rounds_for_fewer_bytes() -> None:
    parties = run_parties(3, _protocol)
    expected = (_values()[0] < 0).double().tolist()
    for party in parties:
        assert party["adder"][0] == expected and party["packed"][0] == expected
        assert party["packed"][1] == party["adder"][1]
        assert party["packed"][2] < 0.45 * party["adder"][2], (party["packed"][2], party["adder"][2])
        assert party["chosen"] == party["adder"]     # 3,000 elements: below PACKED_FROM


def test_less_than_zero_takes_the_packed_comparison_from_packed_from_elements(monkeypatch: pytest.MonkeyPatch) -> None:
    """What every caller (a training step's sigmoid, relu, thresholds) gets at size: the
    packed comparison's bit and bytes once the input has PACKED_FROM elements."""
    from mpcnode.worker import comparison

    monkeypatch.setattr(comparison, "PACKED_FROM", COUNT)   # the parties are threads: they see it
    parties = run_parties(3, _protocol)
    expected = (_values()[0] < 0).double().tolist()
    for party in parties:
        assert party["chosen"] == party["packed"] and party["chosen"][0] == expected
        assert party["chosen"][2] < party["adder"][2]


def _copies(rank: int) -> tuple[list[int], int, int]:
    """A 2-dataset round whose second dataset copies 10 of the first's rows (1e-3 noise)."""
    import crypten.communicator as comm
    from crypten.mpc import MPCTensor

    from mpcnode.worker.backend import CrypTenBackend
    from mpcnode.worker.copy_detection import count_copies

    generator = torch.Generator().manual_seed(3)
    rows = torch.randn(200, 6, generator=generator, dtype=torch.float64)
    rows[150:160] = rows[0:10] + 0.001 * torch.randn(10, 6, generator=generator, dtype=torch.float64)
    encoded = (rows * 2**16).round().long()
    shares = [torch.randint(-2**62, 2**62, encoded.shape, generator=generator) for _ in range(2)]
    table = MPCTensor.from_shares([*shares, encoded - shares[0] - shares[1]][rank], precision=16)
    comm.get().reset_communication_stats()
    counts = count_copies(CrypTenBackend(), table, [100, 100], b"seed", sample_rows=64)
    stats = comm.get().get_communication_stats()
    return counts.counts, int(stats["rounds"]), int(stats["bytes"])


def test_copy_distances_untruncated_count_the_same_copies_in_fewer_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    from mpcnode.worker import copy_detection

    untruncated = run_parties(3, _copies)
    monkeypatch.setattr(copy_detection, "UNTRUNCATED_BELOW", 0)   # the truncated product
    truncated = run_parties(3, _copies)
    picked = copy_detection.sample_indices(b"seed", 1, 100, 64)
    copied = int(((picked >= 50) & (picked < 60)).sum())      # rows 150..159 of the table
    assert untruncated[1][0] == truncated[1][0] == [0, copied] and copied > 0
    assert untruncated[1][1] < truncated[1][1] and untruncated[1][2] < truncated[1][2]
