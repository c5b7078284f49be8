"""Whether a re-run of a tournament's resolution agrees with the recorded result.

One owner for the verdict: `admin tournament verify` (`coordinator.tournament_verify`)
computes it from the re-run, and the ledger's rule for `tournament_verified`
(`ledger.tournament_rules`) recomputes it from the recorded result and the re-run's
numbers in the entry, so a verdict that contradicts the numbers is refused. Pure: numbers
in, a verdict out.

Agrees when every revealed number (the metamodel's metric, each model's contribution,
each dataset's within its model) is within the tolerance of the recorded one, and no
contribution flipped sides: beyond +band in one run and below -band in the other (paid in
one, slashed in the other), whatever the tolerance. A re-run of another shape never agrees.

The band is the larger of the tournament's epsilon and half an honest re-run's noise
(`sign_flips.flip_band`, recorded in the entry); entries written before it was recorded
replay with the epsilon alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mutualmind.vocabulary.sign_flips import sign_flips

# the three fields of a result (and of a re-run) that carry its revealed numbers
NUMBER_FIELDS = ("metamodel_metric_micro", "contributions_micro", "dataset_contributions_micro")


@dataclass(frozen=True)
class TournamentVerification:
    """One row per revealed number: label, recorded, recomputed (micro-units)."""

    tournament_id: str
    agrees: bool
    rows: list[tuple[str, int, int]]
    max_abs_diff_micro: int
    tolerance_micro: int
    flipped: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"tournament_id": self.tournament_id, "agrees": self.agrees,
                "rows": [{"number": label, "recorded_micro": a, "recomputed_micro": b} for label, a, b in self.rows],
                "max_abs_diff_micro": self.max_abs_diff_micro, "tolerance_micro": self.tolerance_micro,
                "flipped": self.flipped}


Models = Sequence[tuple[str, Sequence[str]]]   # (model id, its datasets) in submission order


def labelled(models: Models, numbers: dict[str, Any]) -> list[tuple[str, int]]:
    """The revealed numbers of a result, each with a label (metamodel, model, model/dataset);
    ValueError when their shape is not the models'."""
    rows = [("metamodel", int(numbers["metamodel_metric_micro"]))]
    rows += [(mid, int(c)) for (mid, _), c in zip(models, numbers["contributions_micro"], strict=True)]
    for (mid, datasets), parts in zip(models, numbers["dataset_contributions_micro"], strict=True):
        rows += [(f"{mid}/{d}", int(c)) for d, c in zip(datasets, parts, strict=True)]
    return rows


def compare(tournament_id: str, models: Models, recorded: dict[str, Any], recomputed: dict[str, Any], *,
            tolerance_micro: int, epsilon_micro: int, flip_band_micro: int | None = None) -> TournamentVerification:
    """The verdict (module doc); `flip_band_micro` None (an entry written before it was
    recorded) counts flips beyond epsilon."""
    try:
        a, b = labelled(models, recorded), labelled(models, recomputed)
    except ValueError:  # zip(strict=True): the re-run revealed another shape than the record
        return TournamentVerification(tournament_id, False, [], 0, tolerance_micro, ["shape"])
    rows = [(label, x, y) for (label, x), (_, y) in zip(a, b, strict=True)]
    diff = max(abs(x - y) for _, x, y in rows)
    flipped = sign_flips([label for label, _, _ in rows[1:]], [x for _, x, _ in rows[1:]],
                         [y for _, _, y in rows[1:]], epsilon_micro, flip_band_micro)
    return TournamentVerification(tournament_id, diff <= tolerance_micro and not flipped, rows, diff,
                                  tolerance_micro, flipped)
