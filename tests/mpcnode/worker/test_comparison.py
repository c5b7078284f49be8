"""The packed comparison gives `less_than_zero`'s bit exactly, in its rounds, for fewer
bytes: three real CrypTen parties and the dealer, in-process (`plane_memory`)."""

from __future__ import annotations

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

    from mpcnode.worker.comparison import less_than_zero, less_than_zero_packed

    value = MPCTensor.from_shares(_values()[1][rank], precision=0)
    out = {}
    for name, compare in (("adder", less_than_zero), ("packed", less_than_zero_packed)):
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
