"""The metamodel's weights: public stakes, a public per-model cap, integer ppm.

A tournament's metamodel is the weighted mean of its models' predictions. The weights
come from public numbers only (the stakes on the ledger and the tournament's
`weight_cap_ppm`), so they are computed here in plaintext, exactly (fractions, no
floats), and every node, the coordinator and `ledger verify` get the same integers.
The MPC resolution (`mpcnode.worker.metamodel`) multiplies the secret predictions by
them.

The rule (iterative capping, "water-filling"):
1. Models with stake 0 weigh 0; the others start at stake / total stake.
2. While some weight exceeds the cap, every such model is fixed at the cap, and the
   mass left (1 - cap x fixed models) is shared over the rest by stake. A model fixed
   once stays fixed (the rest's weights only grow), so this ends after at most K passes.
3. If the cap cannot be met (cap x models with stake < 1), the weights are equal.
4. The exact fractions become integer ppm summing to 10^6 by the largest remainder rule
   (a model exactly at the cap has no remainder, so no model ever exceeds the cap).

Leaving model j out (its contribution, `leave_one_out_weights`) re-runs the same rule on
the others' stakes: the metamodel as it would have been had j not been submitted.
With no model left the metamodel is the uninformed baseline (see `metamodel.py`).

Copies (`copy_leaders`): submissions with the same recipe (canonical, every default
filled in) and the same set of datasets, both public on the ledger, form a group, and
the group leaves the metamodel as a unit: the metamodel "without model j" is the one
without every member of j's group. Leave-one-model-out with re-weighting would let a copy
and its original each keep a positive contribution (removing one raises the other's
weight); leaving the group out gives the group one contribution, which the settlement
credits to the earliest submission only (`tournament_settlement`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.largest_remainder import largest_remainder_split

PPM = 1_000_000


def metamodel_weights(stakes: Sequence[int], cap_ppm: int) -> list[int]:
    """Each model's weight in integer ppm (sum 10^6), capped at `cap_ppm` (see the module)."""
    if not stakes:
        raise InvalidInput("a metamodel needs at least one model")
    if any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in stakes):
        raise InvalidInput(f"stakes must be non-negative integers, got {list(stakes)}")
    if not isinstance(cap_ppm, int) or not 0 < cap_ppm <= PPM:
        raise InvalidInput(f"the weight cap must be an integer in (0, {PPM}] ppm, got {cap_ppm!r}")
    staked = [i for i, s in enumerate(stakes) if s > 0]
    if not staked:
        raise InvalidInput("every model's stake is 0: nothing to weight the metamodel by")
    cap = Fraction(cap_ppm, PPM)
    exact = dict.fromkeys(staked, Fraction(0))
    if cap * len(staked) < 1:
        exact = dict.fromkeys(staked, Fraction(1, len(staked)))
    else:
        fixed: set[int] = set()
        while True:
            free = [i for i in staked if i not in fixed]
            mass = 1 - cap * len(fixed)
            total = sum(stakes[i] for i in free)
            for i in free:
                exact[i] = mass * Fraction(stakes[i], total)
            over = {i for i in free if exact[i] > cap}
            if not over:
                break
            for i in over:
                exact[i] = cap
            fixed |= over
    denominator = math.lcm(*(value.denominator for value in exact.values()))
    numerators = [int(exact[i] * denominator) for i in staked]
    # a weight of exactly 0 cannot occur here (every staked model keeps a positive share)
    parts = largest_remainder_split(PPM, numerators)
    weights = [0] * len(stakes)
    for i, part in zip(staked, parts, strict=True):
        weights[i] = part
    return weights


def copy_leaders(submissions: Sequence[tuple[Mapping[str, object], Sequence[str]]]) -> list[int]:
    """For each submission (recipe, datasets), in submission order, the index of the
    earliest submission with the same recipe and the same set of datasets: itself for an
    original, the original's index for a copy (see the module docstring)."""
    first: dict[str, int] = {}
    leaders = []
    for index, (recipe, datasets) in enumerate(submissions):
        key = canonical_json({"recipe": dict(recipe), "datasets": sorted(datasets)}).decode()
        leaders.append(first.setdefault(key, index))
    return leaders


def leave_one_out_weights(stakes: Sequence[int], cap_ppm: int,
                          leaders: Sequence[int] | None = None) -> list[list[int]]:
    """K rows of K ppm weights: row j is the metamodel without model j and its copies
    (`leaders`, from `copy_leaders`; none by default), their weights 0 and the rule re-run
    on the others' stakes; an all-zero row when nothing is left to weight (no other
    model, or only models with stake 0)."""
    group = list(leaders) if leaders is not None else list(range(len(stakes)))
    if len(group) != len(stakes) or any(not 0 <= g <= i for i, g in enumerate(group)):
        raise InvalidInput(f"need one leader per model, each at or before it, got {group}")
    rows = []
    for j in range(len(stakes)):
        kept = [i for i in range(len(stakes)) if group[i] != group[j]]
        others = [stakes[i] for i in kept]
        if not any(others):
            rows.append([0] * len(stakes))
            continue
        row = [0] * len(stakes)
        for i, weight in zip(kept, metamodel_weights(others, cap_ppm), strict=True):
            row[i] = weight
        rows.append(row)
    return rows
