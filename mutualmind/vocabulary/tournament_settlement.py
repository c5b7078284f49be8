"""How a tournament's tokens move: the two levels of the model market, as pure integers.

One owner for the rule: the coordinator turns `settle_tournament` into ledger entries
(`settlement_entries`, appended in one group commit), and the ledger's replay
(`ledger.tournament_rules`) recomputes the same list from its own state and refuses any
entry that differs, so `ledger verify` re-checks both levels exactly. No I/O. Amounts are
token units, contributions and metrics integers in millionths, shares basis points.

Level 1 (models):
- A model whose contribution is below -epsilon is slashed S = floor(stake * slash_rate_ppm
  / 1e6), even when the bounty threshold is not met.
- The bounty is paid only if the metamodel's metric beats the threshold (strictly: above
  it for accuracy, below it for log_loss and mse); otherwise the pool goes back to the
  sponsor.
- The distributable amount (the pool if the bounty is paid, plus every slash S) is split
  over the models whose contribution is above +epsilon, pro rata, largest remainder
  (`largest_remainder`: ties to the earlier submission). With no such model it goes to
  the sponsor as well.

Level 2 (each model's data):
- A rewarded model's reward R: the modeler keeps floor(R * kept_share_bps / 10000); the
  rest is split over the model's datasets whose contribution (within that model) is above
  +epsilon, pro rata, largest remainder, paid to each dataset's provider; with no such
  dataset the modeler keeps all of R.
- A slashed model passes on the same share of its slash that it passes on of gains:
  P = S - floor(S * kept_share_bps / 10000) is split over its datasets whose contribution
  is below -epsilon, by the size of their (negative) contribution, largest remainder.
  Each such dataset gives at most what is left of its cap, floor(dataset stake *
  slash_rate_ppm / 1e6), one cap per dataset per tournament, used up model by model in
  submission order (so no dataset loses more than the tournament's slash rate of its
  stake, which its terms allowed). What a dataset gives comes from its stake; the model
  gives S minus that from its own stake. Either way S tokens reach the distributable
  amount, so level 1 does not depend on level 2.
- Every model gets back its stake less its own part of the slash.

Copies: a submission with the same recipe and the same set of datasets as an earlier one
(`metamodel_weights.copy_leaders`, public facts only) is a copy of it (`ModelPart.copy_of`).
The resolution leaves the group out as a unit, so the group has one contribution; the
earliest submission's is the group's. Only the earliest submission can be rewarded; a copy
earns nothing, yet shares the group's slash test (a copy of a harmful model is slashed
like it): copying can only lose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.largest_remainder import largest_remainder_split
from mutualmind.vocabulary.states import EntryKind

PPM = 1_000_000
BPS = 10_000


@dataclass(frozen=True)
class DatasetPart:
    """One dataset a model chose: whose it is, its stake now, its contribution in the model."""

    dataset_id: str
    provider_id: str
    stake: int
    contribution_micro: int


@dataclass(frozen=True)
class ModelPart:
    """One submitted model, with the revealed numbers of the tournament's result."""

    model_id: str
    modeler: str
    stake: int
    kept_share_bps: int
    contribution_micro: int
    datasets: tuple[DatasetPart, ...]
    copy_of: str = ""   # the earlier model this one copies (same recipe and datasets), if any


@dataclass(frozen=True)
class TournamentSettlement:
    """Every amount the settlement moves; `settlement_entries` orders them as entries."""

    bounty_paid: bool
    refund: int = 0                                                  # pool (+ slashes) -> sponsor
    model_slashes: dict[str, int] = field(default_factory=dict)      # model -> S (both parts)
    dataset_slashes: dict[str, dict[str, int]] = field(default_factory=dict)  # model -> dataset -> part of S
    rewards: dict[str, int] = field(default_factory=dict)            # level 1: pool -> model
    kept: dict[str, int] = field(default_factory=dict)               # level 2: model -> modeler
    dataset_payouts: dict[str, dict[str, int]] = field(default_factory=dict)  # model -> dataset -> amount
    stake_returned: dict[str, int] = field(default_factory=dict)     # model stake -> modeler


def beats_threshold(metric_micro: int, threshold_micro: int, higher_is_better: bool) -> bool:
    """Whether the metamodel's metric beats the bounty threshold (strictly)."""
    return metric_micro > threshold_micro if higher_is_better else metric_micro < threshold_micro


def _check(models: list[ModelPart], pool: int, slash_rate_ppm: int, epsilon_micro: int) -> None:
    if pool < 0:
        raise InvalidInput(f"pool must be >= 0, got {pool}")
    if not 0 <= slash_rate_ppm <= PPM:
        raise InvalidInput(f"slash_rate_ppm must be within 0..{PPM}, got {slash_rate_ppm}")
    if epsilon_micro < 0:
        raise InvalidInput(f"epsilon_micro must be >= 0, got {epsilon_micro}")
    if len({m.model_id for m in models}) != len(models):
        raise InvalidInput("a model id appears twice")
    for m in models:
        if m.stake < 0 or not 0 <= m.kept_share_bps <= BPS:
            raise InvalidInput(f"model {m.model_id!r}: stake >= 0 and kept share 0..{BPS} bps")
        if any(d.stake < 0 for d in m.datasets):
            raise InvalidInput(f"model {m.model_id!r}: a dataset stake is negative")
    originals: set[str] = set()
    for m in models:
        if m.copy_of and m.copy_of not in originals:
            raise InvalidInput(f"model {m.model_id!r} copies {m.copy_of!r}, which is not an earlier original")
        if not m.copy_of:
            originals.add(m.model_id)


def _pass_slash(model: ModelPart, slash: int, rate: int, epsilon: int,
                caps: dict[str, int]) -> dict[str, int]:
    """The part of `model`'s slash its hurting datasets bear, within what is left of each cap."""
    passed = slash - slash * model.kept_share_bps // BPS
    hurting = [d for d in model.datasets if d.contribution_micro < -epsilon]
    if passed <= 0 or not hurting:
        return {}
    parts = largest_remainder_split(passed, [-d.contribution_micro for d in hurting])
    borne: dict[str, int] = {}
    for d, part in zip(hurting, parts):
        cap = caps.setdefault(d.dataset_id, d.stake * rate // PPM)
        amount = min(part, cap)
        if amount > 0:
            borne[d.dataset_id] = amount
            caps[d.dataset_id] = cap - amount
    return borne


def settle_tournament(
    models: list[ModelPart],
    *,
    pool: int,
    metamodel_metric_micro: int,
    threshold_micro: int,
    higher_is_better: bool,
    slash_rate_ppm: int,
    epsilon_micro: int,
) -> TournamentSettlement:
    """Both levels of the settlement (module docstring); `models` in submission order."""
    _check(models, pool, slash_rate_ppm, epsilon_micro)
    bounty = beats_threshold(metamodel_metric_micro, threshold_micro, higher_is_better)
    model_slashes: dict[str, int] = {}
    dataset_slashes: dict[str, dict[str, int]] = {}
    caps: dict[str, int] = {}  # dataset -> what it may still give in this tournament
    group = {m.model_id: m.contribution_micro for m in models if not m.copy_of}
    for m in models:
        if group[m.copy_of or m.model_id] < -epsilon_micro:
            slash = m.stake * slash_rate_ppm // PPM
            if slash > 0:
                model_slashes[m.model_id] = slash
                borne = _pass_slash(m, slash, slash_rate_ppm, epsilon_micro, caps)
                if borne:
                    dataset_slashes[m.model_id] = borne
    distributable = (pool if bounty else 0) + sum(model_slashes.values())
    refund = 0 if bounty else pool
    winners = [m for m in models if not m.copy_of and m.contribution_micro > epsilon_micro]
    rewards: dict[str, int] = {}
    if winners:
        parts = largest_remainder_split(distributable, [m.contribution_micro for m in winners])
        rewards = {m.model_id: part for m, part in zip(winners, parts) if part > 0}
    else:
        refund += distributable
    kept: dict[str, int] = {}
    dataset_payouts: dict[str, dict[str, int]] = {}
    for m in models:
        reward = rewards.get(m.model_id, 0)
        if not reward:
            continue
        keep = reward * m.kept_share_bps // BPS
        helping = [d for d in m.datasets if d.contribution_micro > epsilon_micro]
        if helping and reward - keep > 0:
            parts = largest_remainder_split(reward - keep, [d.contribution_micro for d in helping])
            paid = {d.dataset_id: part for d, part in zip(helping, parts) if part > 0}
            if paid:
                dataset_payouts[m.model_id] = paid
        else:
            keep = reward
        if keep:
            kept[m.model_id] = keep
    stake_returned = {}
    for m in models:
        own = model_slashes.get(m.model_id, 0) - sum(dataset_slashes.get(m.model_id, {}).values())
        if m.stake - own > 0:
            stake_returned[m.model_id] = m.stake - own
    return TournamentSettlement(bounty, refund, model_slashes, dataset_slashes, rewards, kept,
                                dataset_payouts, stake_returned)


Request = tuple[str, dict[str, Any]]


def abort_entries(tournament_id: str, sponsor: str, pool: int, models: list[ModelPart]) -> list[Request]:
    """What follows a `tournament_aborted` (before any result): the pool back to the
    sponsor, every model's stake back to its modeler, then `tournament_closed`."""
    out: list[Request] = []
    if pool:
        out.append((EntryKind.TOURNAMENT_REFUND, {"tournament_id": tournament_id, "sponsor": sponsor,
                                                  "amount": pool}))
    for m in models:
        if m.stake:
            out.append((EntryKind.MODEL_STAKE_RETURNED, {"tournament_id": tournament_id,
                                                         "model_id": m.model_id, "modeler": m.modeler,
                                                         "amount": m.stake}))
    out.append((EntryKind.TOURNAMENT_CLOSED, {"tournament_id": tournament_id}))
    return out


def settlement_entries(tournament_id: str, sponsor: str, models: list[ModelPart],
                       settlement: TournamentSettlement) -> list[Request]:
    """The settlement as ledger entries (kind, payload), in the one order the ledger expects.

    Slashes first (for each model: its datasets' parts, then its own), then the refund,
    then level 1 and level 2 model by model (reward, the modeler's kept share, each
    dataset's payout), then the stakes returned, then `tournament_closed`. Zero amounts
    make no entry.
    """
    out: list[Request] = []
    t = tournament_id
    for m in models:
        providers = {d.dataset_id: d.provider_id for d in m.datasets}
        for dataset, amount in settlement.dataset_slashes.get(m.model_id, {}).items():
            out.append((EntryKind.MODEL_DATASET_SLASHED, {
                "tournament_id": t, "model_id": m.model_id, "dataset_id": dataset,
                "provider_id": providers[dataset], "amount": amount}))
        own = settlement.model_slashes.get(m.model_id, 0) - sum(
            settlement.dataset_slashes.get(m.model_id, {}).values())
        if own > 0:
            out.append((EntryKind.MODEL_SLASHED, {"tournament_id": t, "model_id": m.model_id,
                                                  "modeler": m.modeler, "amount": own}))
    if settlement.refund:
        out.append((EntryKind.TOURNAMENT_REFUND, {"tournament_id": t, "sponsor": sponsor,
                                                  "amount": settlement.refund}))
    for m in models:
        reward = settlement.rewards.get(m.model_id, 0)
        if not reward:
            continue
        out.append((EntryKind.MODEL_REWARDED, {"tournament_id": t, "model_id": m.model_id,
                                               "amount": reward}))
        if settlement.kept.get(m.model_id):
            out.append((EntryKind.MODEL_PAYOUT, {"tournament_id": t, "model_id": m.model_id,
                                                 "to": m.modeler, "amount": settlement.kept[m.model_id]}))
        providers = {d.dataset_id: d.provider_id for d in m.datasets}
        for dataset, amount in settlement.dataset_payouts.get(m.model_id, {}).items():
            out.append((EntryKind.MODEL_PAYOUT, {"tournament_id": t, "model_id": m.model_id,
                                                 "to": providers[dataset], "amount": amount,
                                                 "dataset_id": dataset}))
    for m in models:
        if settlement.stake_returned.get(m.model_id):
            out.append((EntryKind.MODEL_STAKE_RETURNED, {
                "tournament_id": t, "model_id": m.model_id, "modeler": m.modeler,
                "amount": settlement.stake_returned[m.model_id]}))
    out.append((EntryKind.TOURNAMENT_CLOSED, {"tournament_id": t}))
    return out
