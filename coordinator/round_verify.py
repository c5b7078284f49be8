"""`admin round verify R`: run a closed round's valuation again and compare.

MPC fixed-point arithmetic adds small noise (truncation of shares), so a re-run never
reproduces the recorded values bit for bit; it must agree within a stated tolerance, in
the metric's own units. The verdict is recorded on the ledger as a `round_verified`
entry (it moves no token), after the re-run's attestations were checked like any result.
The tolerance defaults to the larger of the round's epsilon (its dead band) and the
re-run noise of MPC (`rerun_noise_micro`): the truncations of a re-run draw fresh dealer
randomness, so an honest round re-run differs by up to ~2,300 micro on log-loss
(measured); with epsilon (1,000) alone every honest round "disagreed". A sign flip
never agrees, whatever the tolerance: a contribution paid in one run and slashed in the
other, beyond a band honest noise cannot cross (the larger of epsilon and half the
noise: `vocabulary.sign_flips`, recorded in the entry as flip_band_micro), is a
disagreement; the ledger re-applies the rule.
`--tolerance` sets the tolerance explicitly.
The re-run uses the result's recorded beacon (`vocabulary.beacon`), so it samples the
same rows for copy detection and the same Banzhaf coalitions as the recorded run, and
the nodes sign that beacon (the round_verified entry repeats it). Copy detection (issue
13) is re-checked too: the re-run's copy counts must mark the same datasets as copies as
the recorded result; a dataset flagged in one run and not the other is a disagreement.
Rounds recorded without copy counts are compared on their contributions only, and
rounds without a beacon re-run with a fresh one, exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from coordinator.rounds import Rounds
from mutualmind.errors import IntegrityError, InvalidInput, NotFound
from mutualmind.vocabulary.copy_rule import copied_datasets
from mutualmind.vocabulary.deadlines import ROUND_S
from mutualmind.vocabulary.model_spec import MICRO
from mutualmind.vocabulary.sign_flips import flip_band, sign_flips
from mutualmind.vocabulary.states import EntryKind, RoundStatus
from mutualmind.vocabulary.valuation import round_result_micro

# an honest re-run's difference on continuous metrics (log-loss, MSE): 2,273 micro
# measured on the test rounds (tests/coordinator/rounds/test_round_verify*), doubled
RERUN_NOISE_MICRO = 5_000
# on accuracy one validation row that flips its prediction moves the metric by 1/rows:
# the band is two rows
ACCURACY_NOISE_ROWS = 2


def rerun_noise_micro(metric: str, validation_rows: int) -> int:
    """How far an honest re-run may differ, per contribution, in micro-units."""
    if metric == "accuracy" and validation_rows > 0:
        return max(RERUN_NOISE_MICRO, -(-ACCURACY_NOISE_ROWS * MICRO // validation_rows))
    return RERUN_NOISE_MICRO


@dataclass(frozen=True)
class RoundVerification:
    round_id: str
    agrees: bool
    recorded_micro: list[int]
    recomputed_micro: list[int]
    max_abs_diff_micro: int
    tolerance_micro: int
    ledger_index: int


def max_abs_diff_micro(round_id: str, datasets: list[str], recorded: list[int],
                       recomputed: list[int]) -> int:
    """The largest per-dataset difference; lists of different lengths are a disagreement
    (zip would silently drop the datasets one side is missing), so they raise."""
    if not len(recorded) == len(recomputed) == len(datasets):
        raise IntegrityError(
            f"round {round_id!r}: the ledger records {len(recorded)} contributions and the "
            f"re-run computed {len(recomputed)} for {len(datasets)} datasets {datasets}; "
            "they cannot be compared (check the round's entries with `ledger verify`)")
    return max((abs(a - b) for a, b in zip(recorded, recomputed, strict=True)), default=0)


def verify_round(rounds: Rounds, round_id: str, *, tolerance: float | None = None,
                 deadline_s: float = ROUND_S) -> RoundVerification:
    """Re-run and compare; `tolerance` in metric units, None for the default (the larger
    of the round's epsilon and the re-run noise, see the module doc)."""
    if tolerance is not None and not 0 < tolerance < 1e6:
        raise InvalidInput(f"tolerance must be positive, got {tolerance}")
    payload = rounds.round_payload(round_id, statuses=(RoundStatus.CLOSED,))
    validation = rounds.ledger.state.datasets.get(str(payload.get("validation_dataset", "")), {})
    noise = rerun_noise_micro(payload["model_spec"].get("metric", "log_loss"), int(validation.get("rows", 0)))
    epsilon = int(payload.get("epsilon_micro", 0))
    band = flip_band(epsilon, noise)
    if tolerance is None:
        tolerance = max(epsilon, noise) / MICRO
    result = next((e.payload for e in rounds.ledger.round_entries(round_id, EntryKind.ROUND_RESULT)), None)
    if result is None:
        raise NotFound(f"round {round_id!r} has no recorded result to verify")
    runtime = rounds.claim(round_id)
    try:
        order, metrics, _ = rounds.execute(payload, deadline_s, lambda *a: None, runtime, result.get("beacon"))
        recomputed_copies = runtime.copies
    finally:
        runtime.running = False
    recomputed, _ = round_result_micro(metrics, payload["model_spec"], len(payload["datasets"]))
    recorded = list(result["contributions_micro"])
    diff = max_abs_diff_micro(round_id, list(payload["datasets"]), recorded, recomputed)
    tolerance_micro = int(round(tolerance * MICRO))
    flipped = sign_flips(list(payload["datasets"]), recorded, recomputed, epsilon, band)
    agrees = diff <= tolerance_micro and not flipped
    verified: dict[str, object] = {
        "round_id": round_id, "job_digest": order.job_digest, "recomputed_micro": recomputed,
        "max_abs_diff_micro": diff, "tolerance_micro": tolerance_micro, "flip_band_micro": band}
    if result.get("beacon") is not None:
        verified["beacon"] = order.beacon
    if result.get("copies") is not None and recomputed_copies is not None:
        datasets = list(payload["datasets"])
        agrees = agrees and copied_datasets(datasets, result["copies"]) == copied_datasets(datasets, recomputed_copies)
        verified["recomputed_copies"] = recomputed_copies
    verified["verdict"] = "agrees" if agrees else "disagrees"
    entry = rounds.ledger.append(EntryKind.ROUND_VERIFIED, verified)
    return RoundVerification(round_id, agrees, recorded, recomputed, diff, tolerance_micro,
                             entry.index)
