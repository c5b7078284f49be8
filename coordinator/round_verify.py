"""`admin round verify R`: run a closed round's valuation again and compare.

MPC fixed-point arithmetic adds small noise (truncation of shares), so a re-run never
reproduces the recorded values bit for bit; it must agree within a stated tolerance, in
the metric's own units. The verdict is recorded on the ledger as a `round_verified`
entry (it moves no token), after the re-run's attestations were checked like any result.
"""

from __future__ import annotations

from dataclasses import dataclass

from coordinator.rounds import Rounds
from mutualmind.errors import InvalidInput, NotFound
from mutualmind.vocabulary.deadlines import ROUND_S
from mutualmind.vocabulary.model_spec import MICRO, contributions_micro
from mutualmind.vocabulary.states import EntryKind, RoundStatus

DEFAULT_TOLERANCE = 0.01


@dataclass(frozen=True)
class RoundVerification:
    round_id: str
    agrees: bool
    recorded_micro: list[int]
    recomputed_micro: list[int]
    max_abs_diff_micro: int
    tolerance_micro: int
    ledger_index: int


def verify_round(rounds: Rounds, round_id: str, *, tolerance: float = DEFAULT_TOLERANCE,
                 deadline_s: float = ROUND_S) -> RoundVerification:
    if not 0 < tolerance < 1e6:
        raise InvalidInput(f"tolerance must be positive, got {tolerance}")
    payload = rounds.round_payload(round_id, statuses=(RoundStatus.CLOSED,))
    result = next((e.payload for e in rounds.ledger.round_entries(round_id, EntryKind.ROUND_RESULT)), None)
    if result is None:
        raise NotFound(f"round {round_id!r} has no recorded result to verify")
    runtime = rounds.claim(round_id)
    try:
        order, metrics, _ = rounds.execute(payload, deadline_s, lambda *a: None, runtime)
    finally:
        runtime.running = False
    recomputed = contributions_micro(metrics, payload["model_spec"].get("metric", "log_loss"))
    recorded = list(result["contributions_micro"])
    diff = max((abs(a - b) for a, b in zip(recorded, recomputed)), default=0)
    tolerance_micro = int(round(tolerance * MICRO))
    agrees = diff <= tolerance_micro
    entry = rounds.ledger.append(EntryKind.ROUND_VERIFIED, {
        "round_id": round_id, "job_digest": order.job_digest, "recomputed_micro": recomputed,
        "max_abs_diff_micro": diff, "tolerance_micro": tolerance_micro,
        "verdict": "agrees" if agrees else "disagrees"})
    return RoundVerification(round_id, agrees, recorded, recomputed, diff, tolerance_micro,
                             entry.index)
