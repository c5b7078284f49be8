"""How much share data one node keeps, in total and per provider: one rule, two checkers.

Every registered dataset puts one share of rows x cols x 8 bytes on every node, so the
coordinator knows at registration what each node will have to store, and refuses a
registration that would not fit before any byte moves; each node applies the same
quotas again when the bytes arrive (its own disk is what it protects, and a node must
not trust the coordinator's arithmetic). Both sides use `StorageQuota.check`, so the
limit and the message are the same wherever a share is refused.

Defaults: 64 GiB of shares per node and 16 GiB per provider per node. An operator
changes them with `--node-quota-bytes` / `--provider-quota-bytes` on `mutualmind node
serve` and `mutualmind coordinator serve` (and `mutualmind cluster up`, which passes
them to both); sizes take a unit: 512MiB, 64GiB, 1TiB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mutualmind.errors import InvalidInput, QuotaExceeded
from mutualmind.vocabulary.dataset import INT64_BYTES

GIB = 1 << 30
DEFAULT_NODE_QUOTA_BYTES = 64 * GIB
DEFAULT_PROVIDER_QUOTA_BYTES = 16 * GIB
HOW_TO_CHANGE = ("the operator can raise it with --node-quota-bytes / --provider-quota-bytes "
                 "on `mutualmind node serve` and `mutualmind coordinator serve` (or `cluster up`)")

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20,
          "g": GIB, "gib": GIB, "t": 1 << 40, "tib": 1 << 40}
_SIZE_RE = re.compile(r"\s*(\d+)\s*([a-zA-Z]*)\s*")


def share_bytes(rows: int, cols: int) -> int:
    """Bytes of one share of a [rows, cols] table (raw int64)."""
    return rows * cols * INT64_BYTES


def parse_size(text: str) -> int:
    """'64GiB' -> 68719476736; a plain number is bytes. InvalidInput on anything else."""
    match = _SIZE_RE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS or int(match.group(1)) < 1:
        raise InvalidInput(f"size {text!r} is not valid: give a positive number of bytes, "
                           "optionally with a unit (KiB, MiB, GiB, TiB), e.g. 64GiB")
    return int(match.group(1)) * _UNITS[unit]


@dataclass(frozen=True)
class StorageQuota:
    """Limits on the share bytes one node holds: all providers together, and each one."""

    node_bytes: int = DEFAULT_NODE_QUOTA_BYTES
    provider_bytes: int = DEFAULT_PROVIDER_QUOTA_BYTES

    def __post_init__(self) -> None:
        for name, value in (("node", self.node_bytes), ("provider", self.provider_bytes)):
            if type(value) is not int or value < 1:
                raise InvalidInput(f"the {name} quota must be a positive number of bytes, got {value!r}")

    @classmethod
    def from_sizes(cls, node: str | None, provider: str | None) -> StorageQuota:
        """The quota of two command-line sizes ('64GiB'); None keeps that default."""
        return cls(node_bytes=parse_size(node) if node else DEFAULT_NODE_QUOTA_BYTES,
                   provider_bytes=parse_size(provider) if provider else DEFAULT_PROVIDER_QUOTA_BYTES)

    def check(self, *, dataset_id: str, size: int, provider_id: str, node_held: int,
              provider_held: int) -> None:
        """QuotaExceeded unless a share of `size` bytes fits next to what is already held
        (`node_held` by the node in total, `provider_held` of it by this provider)."""
        if node_held + size > self.node_bytes:
            raise QuotaExceeded(
                f"share of {dataset_id!r} is {size} bytes, above this node's quota of "
                f"{self.node_bytes} bytes ({_human(self.node_bytes)}) with the {node_held} bytes "
                f"already held; split the table or register a smaller one - {HOW_TO_CHANGE}")
        if provider_held + size > self.provider_bytes:
            raise QuotaExceeded(
                f"share of {dataset_id!r} is {size} bytes, above the per-provider quota of "
                f"{self.provider_bytes} bytes ({_human(self.provider_bytes)}) with the "
                f"{provider_held} bytes {provider_id!r} already has on each node; split the "
                f"table or register a smaller one - {HOW_TO_CHANGE}")


def _human(size: int) -> str:
    for unit, factor in (("TiB", 1 << 40), ("GiB", GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.4g} {unit}"
    return f"{size} B"
