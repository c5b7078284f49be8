"""Which training rows each of the m models of a batched pass may see.

The batched leave-one-out pass trains m = n+1 models at once: model 0 sees every row,
model j sees every row except provider j's. A step needs the public 0/1 mask
[m, batch, 1] of its batch only, so the mask is never built for the whole table: at a
million rows and 51 models that tensor alone would be 400 MB per party. What is kept is
the provider of every row (4 bytes a row) and the provider each model drops.

Datasets the nodes found to be copies (`copy_detection`, `copy_rule.is_copy`) are
`excluded`: no model sees their rows, so a copy adds nothing to any model and its
original keeps the value it has without the copy (issue 13).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from mutualmind.errors import InvalidInput

KEEP_ALL = 0  # a model that drops no provider


class ModelMasks(Protocol):
    """What a batched pass needs of its masks (`RowMasks`, `banzhaf.CoalitionMasks`):
    model 0 is the full model, whose weights are released."""

    @property
    def models(self) -> int: ...

    @property
    def rows(self) -> int: ...

    def batch(self, index: torch.Tensor | None) -> torch.Tensor:
        """The public mask [m, batch, 1] (long 0/1) of the rows `index` (None: every row)."""


@dataclass(frozen=True)
class RowMasks:
    """owner[r] is the 1-based provider of row r; drops[j] the provider model j leaves out;
    no model sees the rows of the providers in `excluded` (1-based)."""

    owner: torch.Tensor  # [rows] int32
    drops: tuple[int, ...]
    excluded: tuple[int, ...] = ()

    @classmethod
    def leave_one_out(cls, provider_rows: Sequence[int], excluded: Sequence[int] = ()) -> RowMasks:
        """The full model and one model without each provider (rows in provider order);
        `excluded` (0-based providers, the copies) are left out of every model."""
        return cls(owners(provider_rows), tuple(range(len(provider_rows) + 1)), _one_based(excluded, len(provider_rows)))

    @classmethod
    def everyone(cls, rows: int) -> RowMasks:
        """One model that sees all `rows` rows."""
        return cls(torch.ones(rows, dtype=torch.int32), (KEEP_ALL,))

    @classmethod
    def full(cls, provider_rows: Sequence[int], excluded: Sequence[int] = ()) -> RowMasks:
        """One model that sees every row but the `excluded` providers' (0-based)."""
        return cls(owners(provider_rows), (KEEP_ALL,), _one_based(excluded, len(provider_rows)))

    @property
    def models(self) -> int:
        return len(self.drops)

    @property
    def rows(self) -> int:
        return int(self.owner.numel())

    def only(self, model: int) -> RowMasks:
        """Model `model` alone (the plaintext reference trains each model separately)."""
        return RowMasks(self.owner, (self.drops[model],), self.excluded)

    def batch(self, index: torch.Tensor | None) -> torch.Tensor:
        """The public mask [m, batch, 1] (long 0/1) of the rows `index` (None: every row)."""
        owners = self.owner if index is None else self.owner[index]
        drops = torch.tensor(self.drops, dtype=torch.int32).reshape(-1, 1)
        seen = owners.reshape(1, -1) != drops
        if self.excluded:
            seen &= ~torch.isin(owners, torch.tensor(self.excluded, dtype=owners.dtype)).reshape(1, -1)
        return seen.to(torch.long).unsqueeze(-1)

    def dense(self) -> torch.Tensor:
        """The whole mask [m, rows, 1]: for tests and small tables only."""
        return self.batch(None)


def owners(provider_rows: Sequence[int]) -> torch.Tensor:
    """The 1-based provider of every row [rows] (rows in provider order)."""
    if not provider_rows or any(r < 1 for r in provider_rows):
        raise InvalidInput(f"every provider needs at least one row, got {list(provider_rows)}")
    return torch.repeat_interleave(torch.arange(1, len(provider_rows) + 1, dtype=torch.int32), torch.tensor(list(provider_rows)))


def _one_based(excluded: Sequence[int], providers: int) -> tuple[int, ...]:
    if any(not 0 <= i < providers for i in excluded):
        raise InvalidInput(f"excluded providers {list(excluded)} must lie in 0..{providers - 1}")
    return tuple(sorted({i + 1 for i in excluded}))
