"""`admin tournament verify T`: run a settled tournament's resolution again and compare.

The nodes evaluate the frozen models again on the committed resolution data (the same
job as `resolve`: each node re-checks its frozen share files against the freeze's
SHA-256 and recomputes the job digest from its own freeze commitments, so the re-run
scores exactly the models that were frozen), every node signs the re-run's numbers
(checked like any result: a node that disagrees fails the verification), and the
coordinator compares them with the recorded `tournament_result`: the metamodel's metric,
each model's contribution and each dataset's within its model.

MPC truncation draws fresh dealer randomness in a re-run, so the numbers agree within a
tolerance, not bit for bit: by default the larger of the tournament's epsilon and the
rounds' measured re-run noise (`round_verify.rerun_noise_micro`). A contribution beyond
+epsilon in one run and below -epsilon in the other (paid in one, slashed in the other)
never agrees, whatever the tolerance. The settlement itself needs no re-run: the
ledger's replay (`ledger verify`) recomputes both levels from the recorded numbers.
Nothing is written: a verification moves no token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coordinator.round_verify import rerun_noise_micro
from coordinator.tournaments import Tournaments, state_model
from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.deadlines import ROUND_S
from mutualmind.vocabulary.states import TournamentStatus


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


def labelled(models: list[tuple[str, list[str]]], numbers: dict[str, Any]) -> list[tuple[str, int]]:
    """The revealed numbers of a result, each with a label (metamodel, model, model/dataset)."""
    rows = [("metamodel", int(numbers["metamodel_metric_micro"]))]
    rows += [(mid, int(c)) for (mid, _), c in zip(models, numbers["contributions_micro"], strict=True)]
    for (mid, datasets), parts in zip(models, numbers["dataset_contributions_micro"], strict=True):
        rows += [(f"{mid}/{d}", int(c)) for d, c in zip(datasets, parts, strict=True)]
    return rows


def compare(tournament_id: str, models: list[tuple[str, list[str]]], recorded: dict[str, Any],
            recomputed: dict[str, Any], *, tolerance_micro: int, epsilon_micro: int) -> TournamentVerification:
    """The verdict (pure): every number within the tolerance, no contribution's side flipped."""
    try:
        a, b = labelled(models, recorded), labelled(models, recomputed)
    except ValueError:  # zip(strict=True): the re-run revealed another shape than the record
        return TournamentVerification(tournament_id, False, [], 0, tolerance_micro, ["shape"])
    rows = [(label, x, y) for (label, x), (_, y) in zip(a, b, strict=True)]
    diff = max(abs(x - y) for _, x, y in rows)
    flipped = [label for label, x, y in rows[1:]
               if (x > epsilon_micro and y < -epsilon_micro) or (x < -epsilon_micro and y > epsilon_micro)]
    return TournamentVerification(tournament_id, diff <= tolerance_micro and not flipped, rows, diff,
                                  tolerance_micro, flipped)


def verify_tournament(tournaments: Tournaments, tournament_id: str, *, tolerance_micro: int | None = None,
                      deadline_s: float = ROUND_S) -> TournamentVerification:
    """Re-run the resolution job of a tournament with a result and compare (module doc);
    `tolerance_micro` None for the default."""
    if tolerance_micro is not None and not 0 < tolerance_micro < 10**12:
        raise InvalidInput(f"the tolerance must be a positive number of micro-units, got {tolerance_micro}")
    record = tournaments.record(tournament_id, TournamentStatus.RESULT, TournamentStatus.CLOSED)
    result = tournaments.recorded_result(tournament_id)
    opened, state = record.opened, tournaments.ledger.state
    epsilon = int(opened["epsilon_micro"])
    if tolerance_micro is None:
        rows = int(state.datasets.get(record.resolution_dataset, {}).get("rows", 0))
        tolerance_micro = max(epsilon, rerun_noise_micro(opened["task"]["metric"], rows))
    recomputed = tournaments.rerun_resolution(tournament_id, deadline_s=deadline_s)
    models = [(mid, list(state_model(tournaments.ledger, tournament_id, mid)["datasets"])) for mid in record.models]
    return compare(tournament_id, models, result, recomputed, tolerance_micro=tolerance_micro,
                   epsilon_micro=epsilon)
