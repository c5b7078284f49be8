"""The largest remainder rule: split an integer amount pro rata, the parts adding up exactly.

One owner for the rule both settlements use: a round's pool (`coordinator.payouts`) and
a tournament's two levels (`mutualmind.vocabulary.tournament_settlement`, which the
ledger's replay also runs, so the rule must sit below the ledger).
"""

from __future__ import annotations

from mutualmind.errors import InvalidInput


def largest_remainder_split(total: int, weights: list[int]) -> list[int]:
    """Split `total` units over positive integer `weights` pro rata; the parts sum to `total`.

    Each part is floor(total * w / W); the units left over go one each to the largest
    fractional remainders (ties to the lower index).
    """
    if total < 0:
        raise InvalidInput(f"cannot split a negative amount ({total})")
    if not weights or any(w <= 0 for w in weights):
        raise InvalidInput("weights must be a non-empty list of positive integers")
    weight_sum = sum(weights)
    parts = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    left = total - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:left]:
        parts[i] += 1
    return parts
