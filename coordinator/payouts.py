"""How a round's tokens move: slashes, then the pool split by contribution.

Pure integer arithmetic, no I/O: the rounds module turns a `Settlement` into ledger
entries (slash, payout, round_closed), and `admin round verify` recomputes it. Amounts
are integer token units; contributions are integers in millionths of the metric.

Rules (DESIGN.md, issue 4):
- A dataset whose contribution is below -epsilon loses floor(stake * slash_rate_ppm /
  1e6) of its stake; slashed tokens join the pool.
- The pool (plus slashes) is split over the contributions above +epsilon pro rata, with
  the largest remainder rule, so the payouts add up to the pool exactly. Equal
  remainders go to the earlier participant (the round's dataset order), which makes the
  split deterministic and replayable.
- With no contribution above +epsilon the whole pool returns to the sponsor.
- A contribution with a standard error (Data Banzhaf by sampling) is judged by its error
  band (`mutualmind.vocabulary.valuation`): paid only if value - K * error > epsilon, pro
  rata to that lower bound; slashed only if value + K * error < -epsilon. Error 0 (leave-
  one-out, exact Banzhaf) is the rule above, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.largest_remainder import largest_remainder_split
from mutualmind.vocabulary.valuation import earns, lower_bound, slashable

__all__ = ["Participant", "Settlement", "largest_remainder_split", "settle"]

PPM = 1_000_000


@dataclass(frozen=True)
class Participant:
    """One dataset taking part in a round."""

    dataset_id: str
    provider_id: str
    stake: int
    contribution_micro: int
    error_micro: int = 0  # standard error of the contribution (0: none, as for LOO)


@dataclass(frozen=True)
class Settlement:
    """The token movements that close a round. `payouts` includes any refund to the sponsor."""

    slashes: dict[str, int] = field(default_factory=dict)   # dataset id -> amount slashed
    payouts: dict[str, int] = field(default_factory=dict)   # party id -> amount paid
    refund_to_sponsor: int = 0

    @property
    def total_paid(self) -> int:
        return sum(self.payouts.values())


def settle(
    participants: list[Participant],
    *,
    pool: int,
    sponsor: str,
    slash_rate_ppm: int,
    epsilon_micro: int,
) -> Settlement:
    """Compute slashes and payouts for a round from its contributions."""
    if pool < 0:
        raise InvalidInput(f"pool must be >= 0, got {pool}")
    if not 0 <= slash_rate_ppm <= PPM:
        raise InvalidInput(f"slash_rate_ppm must be within 0..{PPM}, got {slash_rate_ppm}")
    if epsilon_micro < 0:
        raise InvalidInput(f"epsilon_micro must be >= 0, got {epsilon_micro}")
    if any(p.error_micro < 0 for p in participants):
        raise InvalidInput("standard errors must not be negative")
    slashes: dict[str, int] = {}
    for p in participants:
        if slashable(p.contribution_micro, p.error_micro, epsilon_micro):
            amount = p.stake * slash_rate_ppm // PPM
            if amount > 0:
                slashes[p.dataset_id] = amount
    total = pool + sum(slashes.values())
    winners = [p for p in participants if earns(p.contribution_micro, p.error_micro, epsilon_micro)]
    payouts: dict[str, int] = {}
    if not winners:
        if total:
            payouts[sponsor] = total
        return Settlement(slashes=slashes, payouts=payouts, refund_to_sponsor=total)
    parts = largest_remainder_split(total, [lower_bound(p.contribution_micro, p.error_micro) for p in winners])
    for p, amount in zip(winners, parts):
        if amount:
            payouts[p.provider_id] = payouts.get(p.provider_id, 0) + amount
    return Settlement(slashes=slashes, payouts=payouts, refund_to_sponsor=0)
