"""`[x < 0]` on CrypTen shares in fewer rounds than CrypTen's `_ltz` with 3+ parties.

CrypTen converts the n arithmetic shares to one binary sharing by adding them with
a log-depth (Kogge-Stone) adder, pairwise: with 3 parties that is two full additions,
7 AND rounds each, then one round to turn the sign bit back into an arithmetic share -
15 rounds per comparison, the most expensive part of a training step.

Here the n binary-shared summands are first reduced to two with carry-save adders
(a + b + c = (a ^ b ^ c) + 2 * maj(a, b, c): one AND round per reduction, both ANDs of
a reduction in one batched call), and only the last two go through the log-depth adder.
With 3 parties: 1 + 7 + 1 = 9 rounds. The result is exact (the same bit as `_ltz`).

`less_than_zero_packed` gives the same bit for fewer bytes, for large batches (copy
detection's millions of comparisons, a training step's sigmoid over thousands of rows
and models). CrypTen's adder computes all 64 carries: 6 levels
of two 64-bit ANDs per element. The sign needs only the carry into bit 63: the group
generate of bits 0..62, a prefix tree that halves the groups at each level. Bit
shuffles of XOR shares are local, so each level's operands are compressed to the bits
still needed and several elements packed into one 64-bit word: 1 + 1/2 + ... + 1/32
words per element for the tree instead of 12, in the same 6 rounds.

`less_than_zero` picks one of the two by size (`PACKED_FROM`): both give the same bit in
the same rounds, so the choice changes only bytes and local work, never a result, and a
job's dealer rehearsal takes the same path as its run (the shape decides).
"""

from __future__ import annotations

from typing import Any

import torch

Tensor = Any  # a crypten MPCTensor

# masks that gather the even bits of a word into its low half (`_even_bits`)
_GATHER = (0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x00FF00FF00FF00FF,
           0x0000FFFF0000FFFF, 0x00000000FFFFFFFF)
_LOW63 = 0x7FFFFFFFFFFFFFFF
_TOP = -(1 << 63)
# From this many elements the packed comparison (36 % of the adder's bytes, more local
# bit shuffles) is the faster one. `bench/comparison.py` (three in-process parties, no
# TLS, so bytes cost only a copy): packed 1.4x the adder's time at 256 elements, 1.22x at
# 4,096, 1.15x at 16,384, 0.82x at 65,536. Over the gRPC plane a byte costs ~2 ns more
# (TLS, gRPC's copies): even at ~10,000 elements; across real hosts it costs more still.
# A training step of 4,096 rows x 9 models compares 73,728 elements: 131 -> 57 MB a step.
PACKED_FROM = 8192


def less_than_zero(value: Tensor) -> Tensor:
    """1 where value < 0, else 0, as an integer-encoded (precision 0) MPCTensor: by the
    packed comparison from `PACKED_FROM` elements, else by the adder."""
    if int(value.share.numel()) >= PACKED_FROM:
        return less_than_zero_packed(value)
    return less_than_zero_adder(value)


def less_than_zero_adder(value: Tensor) -> Tensor:
    """`less_than_zero` by CrypTen's log-depth adder on the last two summands."""
    from crypten.mpc import MPCTensor
    from crypten.mpc.primitives import beaver, circuit

    terms = _two_terms(value)
    total = circuit.add(terms[0], terms[1]) if len(terms) == 2 else terms[0]
    total.share >>= 63  # arithmetic shift of the XOR shares: every bit is the sign bit
    bit = beaver.B2A_single_bit(total & 1)
    return MPCTensor.from_shares(bit.share, precision=0)


def less_than_zero_packed(value: Tensor) -> Tensor:
    """The same bit as `less_than_zero`, in the same rounds, for ~40 % of its bytes."""
    from crypten.mpc import MPCTensor
    from crypten.mpc.primitives import beaver
    from crypten.mpc.primitives.binary import BinarySharedTensor

    terms = _two_terms(value)
    if len(terms) == 1:
        sign = BinarySharedTensor.from_shares((terms[0].share >> 63) & 1, precision=0)
    else:
        sign = _sign_of_sum(terms[0], terms[1])
    bit = beaver.B2A_single_bit(sign)
    return MPCTensor.from_shares(bit.share, precision=0)


def _two_terms(value: Tensor) -> list[Any]:
    """The parties' arithmetic shares as binary-shared summands, reduced to two."""
    import crypten.communicator as comm
    from crypten.mpc.primitives.binary import BinarySharedTensor

    share = value.share
    world = comm.get().get_world_size()
    # party i's arithmetic share as a binary-shared input (no communication)
    terms = [BinarySharedTensor(share, src=i) for i in range(world)]
    while len(terms) > 2:
        a, b, c = terms.pop(), terms.pop(), terms.pop()
        partial = a ^ b
        ands = BinarySharedTensor.stack([a, c]) & BinarySharedTensor.stack([b, partial])  # one round
        carry = (ands[0] ^ ands[1]) << 1
        terms += [partial ^ c, carry]
    return terms


def _sign_of_sum(a: Any, b: Any) -> Any:
    """Bit 63 of a + b (binary-shared), in bit 0: a63 ^ b63 ^ (carry into bit 63).

    Generate g = a & b, propagate p = a ^ b per bit; position 63 is set to the identity
    (g 0, p 1), so the group generate of all 64 positions is the carry into bit 63. Each
    level combines pairs (lo = even, hi = odd position): G = G_hi ^ (P_hi & G_lo),
    P = P_hi & P_lo (G and P of a group never both hold, so OR is XOR); its two ANDs are
    one AND of [P_hi, P_hi] with [G_lo, P_lo], packed 64 / width elements per word.
    Everything but the ANDs is a bit shuffle or public mask: local on XOR shares."""
    from crypten.mpc.primitives.binary import BinarySharedTensor

    shape = a.share.size()
    generate = (a & b) & _LOW63                   # one round
    propagate = a ^ b
    top = (propagate.share >> 63) & 1             # a63 ^ b63, in bit 0
    propagate = (propagate & _LOW63) ^ _TOP       # the identity at bit 63
    groups, spans = generate.share.reshape(-1), propagate.share.reshape(-1)
    count, width = int(groups.numel()), 64
    while width > 1:
        half = width // 2
        g_lo, g_hi = _even_bits(groups), _even_bits(groups >> 1)
        p_lo, p_hi = _even_bits(spans), _even_bits(spans >> 1)
        left = BinarySharedTensor.from_shares(_pack(p_hi | (p_hi << half), width), precision=0)
        right = BinarySharedTensor.from_shares(_pack(g_lo | (p_lo << half), width), precision=0)
        both = _unpack((left & right).share, width, count)   # one round
        low = (1 << half) - 1
        groups, spans = g_hi ^ (both & low), (both >> half) & low
        width = half
    return BinarySharedTensor.from_shares((top ^ groups.reshape(shape)) & 1, precision=0)


def _even_bits(word: torch.Tensor) -> torch.Tensor:
    """Bits 0, 2, 4, ... of each word gathered into bits 0, 1, 2, ... (the rest 0)."""
    word = word & _GATHER[0]
    for step, mask in enumerate(_GATHER[1:]):
        word = (word | (word >> (1 << step))) & mask
    return word


def _pack(values: torch.Tensor, width: int) -> torch.Tensor:
    """`width`-bit values, 64 // width to a word (element j of a word at bits j*width...)."""
    per = 64 // width
    if per == 1:
        return values
    padded = torch.cat([values, values.new_zeros((-values.numel()) % per)]).reshape(-1, per)
    words = padded[:, 0].clone()
    for j in range(1, per):
        words |= padded[:, j] << (j * width)
    return words


def _unpack(words: torch.Tensor, width: int, count: int) -> torch.Tensor:
    """The inverse of `_pack`: the first `count` values."""
    per = 64 // width
    if per == 1:
        return words
    shifts = torch.arange(per, dtype=torch.int64) * width
    return ((words.unsqueeze(-1) >> shifts) & ((1 << width) - 1)).reshape(-1)[:count]
