"""The fixed-point precision every role computes with: one owner for FRAC_BITS.

A provider encodes its table as x * 2^FRAC_BITS (int64, ring Z/2^64) before sharing it,
the coordinator refuses a registration at any other precision, each node's worker hands
its shares to CrypTen at this precision, and the sponsor decodes the model's weights with
it. It must equal CrypTen's own encoder precision (`encoder.precision_bits`, 16 by
default); the worker checks that at start (`mpcnode.worker.run`).
"""

from __future__ import annotations

FRAC_BITS = 16
SCALE = 1 << FRAC_BITS  # 65536: the integer that stands for 1.0

