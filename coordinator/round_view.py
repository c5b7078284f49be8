"""A round read back from the ledger: who took part, what they contributed, what moved.

Everything here is derived from ledger entries (round_opened, round_result, slash,
payout, round_closed/aborted) plus the coordinator's runtime notes (last failure, job
stats), so `admin round show` after a restart prints the same table as before it.
"""

from __future__ import annotations

from typing import Any

from coordinator.rounds import RoundRuntime, RoundSummary
from ledger import Ledger
from mutualmind.errors import NotFound
from mutualmind.vocabulary.states import EntryKind, RoundStatus


def round_entries(ledger: Ledger, round_id: str) -> list[Any]:
    """Every entry that names `round_id`, in ledger order."""
    return [e for e in ledger.entries(start=0, limit=None)
            if e.kind.startswith("round_") or e.kind in (EntryKind.SLASH, EntryKind.PAYOUT)
            if e.payload.get("round_id") == round_id]


def opened_entry(ledger: Ledger, round_id: str) -> Any:
    """The round's round_opened entry (its payload bytes carry the sponsor's signature)."""
    for entry in ledger.entries(kind=EntryKind.ROUND_OPENED, limit=None):
        if entry.payload.get("round_id") == round_id:
            return entry
    raise NotFound(f"no round {round_id!r} on the ledger")


def summarize(ledger: Ledger, round_id: str, runtime: RoundRuntime) -> RoundSummary:
    entries = round_entries(ledger, round_id)
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
            "payout": payout, "slashed": slashes.get(dataset_id, 0),
        })
    refund = payouts.get(opened["sponsor"], 0) if opened["sponsor"] not in paid_providers else 0
    return RoundSummary(
        round_id=round_id, status=status, sponsor=opened["sponsor"], pool=opened["pool"],
        model_spec=opened["model_spec"], validation_dataset=opened["validation_dataset"],
        participants=participants,
        metrics_micro=list(result["metrics_micro"]) if result else [],
        job_digest=result["job_digest"] if result else "",
        message=aborted or runtime.message, refund_to_sponsor=refund, stats=runtime.stats,
    )


def _stakes_at(ledger: Ledger, index: int, datasets: list[str]) -> dict[str, int]:
    """Stake per dataset just after entry `index` (replayed from stake/unstake/slash)."""
    wanted = set(datasets)
    stakes: dict[str, int] = {}
    for e in ledger.entries(start=0, limit=index + 1):
        if e.kind in (EntryKind.STAKE, EntryKind.UNSTAKE, EntryKind.SLASH) and e.payload.get("dataset_id") in wanted:
            sign = 1 if e.kind == EntryKind.STAKE else -1
            d = e.payload["dataset_id"]
            stakes[d] = stakes.get(d, 0) + sign * e.payload["amount"]
    return stakes
