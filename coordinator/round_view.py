"""A round read back from the ledger: who took part, what they contributed, what moved.

Everything here is derived from ledger entries (round_opened, round_result and its
Banzhaf standard errors, slash, payout, round_closed/aborted) plus the coordinator's
runtime notes (last failure, job stats), so `admin round show` after a restart prints
the same table as before it.
"""

from __future__ import annotations

from coordinator.rounds import RoundRuntime, RoundSummary
from ledger import Ledger
from mutualmind.errors import NotFound
from mutualmind.vocabulary.states import EntryKind, RoundStatus


def summarize(ledger: Ledger, round_id: str, runtime: RoundRuntime) -> RoundSummary:
    entries = ledger.round_entries(round_id)
    if not entries or entries[0].kind != EntryKind.ROUND_OPENED:
        raise NotFound(f"no round {round_id!r} on the ledger")
    opened = entries[0].payload
    record = ledger.state.rounds[round_id]
    status = RoundStatus.RUNNING if runtime.running else record.status
    result = next((e.payload for e in entries if e.kind == EntryKind.ROUND_RESULT), None)
    slashes = {e.payload["dataset_id"]: e.payload["amount"] for e in entries if e.kind == EntryKind.SLASH}
    payouts: dict[str, int] = {}
    for e in entries:
        if e.kind == EntryKind.PAYOUT:
            payouts[e.payload["to"]] = payouts.get(e.payload["to"], 0) + e.payload["amount"]
    aborted = next((e.payload["reason"] for e in entries if e.kind == EntryKind.ROUND_ABORTED), "")
    stakes_at_open = _stakes_at(ledger, entries[0].index, opened["datasets"])
    participants = []
    paid_providers: set[str] = set()
    for i, dataset_id in enumerate(opened["datasets"]):
        reg = ledger.state.datasets[dataset_id]
        provider = reg["provider_id"]
        payout = payouts.get(provider, 0) if provider not in paid_providers else 0
        paid_providers.add(provider)
        participants.append({
            "dataset_id": dataset_id, "provider_id": provider, "rows": reg["rows"],
            "stake": stakes_at_open.get(dataset_id, 0),
            "contribution_micro": result["contributions_micro"][i] if result else 0,
            # Banzhaf results record standard errors; leave-one-out has none (0, as payouts use)
            "error_micro": result["errors_micro"][i] if result and "errors_micro" in result else 0,
            "payout": payout, "slashed": slashes.get(dataset_id, 0),
        })
    refund = payouts.get(opened["sponsor"], 0) if opened["sponsor"] not in paid_providers else 0
    if record.status == "aborted":
        refund = opened["pool"]   # an abort returns the whole pool (no result, no slash)
    return RoundSummary(
        round_id=round_id, status=status, sponsor=opened["sponsor"], pool=opened["pool"],
        model_spec=opened["model_spec"], validation_dataset=opened["validation_dataset"],
        participants=participants,
        metrics_micro=list(result["metrics_micro"]) if result else [],
        job_digest=result["job_digest"] if result else "",
        message=aborted or runtime.message, refund_to_sponsor=refund, stats=runtime.stats,
    )


def _stakes_at(ledger: Ledger, index: int, datasets: list[str]) -> dict[str, int]:
    """Stake per dataset just after entry `index` (replayed from stake/unstake/slash and
    the slashes tournaments pass on to data)."""
    stakes: dict[str, int] = {}
    for d in datasets:
        for e in ledger.dataset_entries(d, stop=index + 1):
            if e.kind in (EntryKind.STAKE, EntryKind.UNSTAKE, EntryKind.SLASH,
                          EntryKind.MODEL_DATASET_SLASHED):
                sign = 1 if e.kind == EntryKind.STAKE else -1
                stakes[d] = stakes.get(d, 0) + sign * e.payload["amount"]
    return stakes
