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
+band in one run and below -band in the other (paid in one, slashed in the other) never
agrees, whatever the tolerance; the band is the larger of epsilon and half that noise
(`sign_flips.flip_band`), recorded with the verdict. The settlement itself needs no re-run: the
ledger's replay (`ledger verify`) recomputes both levels from the recorded numbers.
Nothing is written: a verification moves no token.
"""

from __future__ import annotations

from coordinator.round_verify import rerun_noise_micro
from coordinator.tournaments import Tournaments, state_model
from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.deadlines import ROUND_S
from mutualmind.vocabulary.sign_flips import flip_band
from mutualmind.vocabulary.states import EntryKind, TournamentStatus
from mutualmind.vocabulary.tournament_verdict import (
    NUMBER_FIELDS,
    TournamentVerification,
    compare,
)


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
    rows = int(state.datasets.get(record.resolution_dataset, {}).get("rows", 0))
    noise = rerun_noise_micro(opened["task"]["metric"], rows)
    band = flip_band(epsilon, noise)
    if tolerance_micro is None:
        tolerance_micro = max(epsilon, noise)
    recomputed = tournaments.rerun_resolution(tournament_id, deadline_s=deadline_s)
    models = [(mid, list(state_model(tournaments.ledger, tournament_id, mid)["datasets"])) for mid in record.models]
    verdict = compare(tournament_id, models, result, recomputed, tolerance_micro=tolerance_micro,
                      epsilon_micro=epsilon, flip_band_micro=band)
    tournaments.ledger.append(EntryKind.TOURNAMENT_VERIFIED, {
        "tournament_id": tournament_id, "job_digest": record.job_digest,
        **{name: recomputed[name] for name in NUMBER_FIELDS},
        "max_abs_diff_micro": verdict.max_abs_diff_micro, "tolerance_micro": tolerance_micro,
        "flip_band_micro": band, "verdict": "agrees" if verdict.agrees else "disagrees"})
    return verdict
