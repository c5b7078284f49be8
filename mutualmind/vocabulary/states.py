"""The domain states as enums: round status, job state, ledger entry kind.

Each is an `enum.StrEnum`, so a member *is* its string: it compares equal to it, hashes
like it, prints as it, and `canonical_json` / `json.dumps` / protobuf string fields encode
it as exactly that string. Wire formats and ledger bytes are the same as with bare
strings; what changes is that a misspelt state is a NameError instead of a silent
mismatch, and every place that compares states names the same member.
"""

from __future__ import annotations

from enum import StrEnum


class RoundStatus(StrEnum):
    """A round's life: open -> result -> closed, or aborted from open or result.

    RUNNING is the coordinator's runtime view of an open round whose MPC job is under
    way; it is never on the ledger.
    """

    OPEN = "open"
    RUNNING = "running"
    RESULT = "result"
    CLOSED = "closed"
    ABORTED = "aborted"


# statuses in which a round still holds its pool and its datasets' stakes
UNSETTLED = frozenset({RoundStatus.OPEN, RoundStatus.RESULT})


class JobState(StrEnum):
    """An MPC job on a node: queued -> running -> done, failed or cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class EntryKind(StrEnum):
    """The kinds of ledger entry (their payloads and signers: `payloads.KINDS`)."""

    GENESIS = "genesis"
    NODE_REGISTERED = "node_registered"
    PROVIDER_REGISTERED = "provider_registered"
    MINT = "mint"
    TRANSFER = "transfer"
    DATASET_REGISTERED = "dataset_registered"
    DATASET_TERMS_UPDATED = "dataset_terms_updated"
    STAKE = "stake"
    UNSTAKE = "unstake"
    ROUND_OPENED = "round_opened"
    ROUND_RESULT = "round_result"
    SLASH = "slash"
    PAYOUT = "payout"
    ROUND_CLOSED = "round_closed"
    ROUND_ABORT_REQUESTED = "round_abort_requested"
    ROUND_ABORTED = "round_aborted"
    ROUND_VERIFIED = "round_verified"
    # a mutually owned model (issue 16): `payloads.KINDS` and `ledger.ownership_rules`
    MODEL_UNITS_ISSUED = "model_units_issued"
    MODEL_UNITS_TRANSFERRED = "model_units_transferred"
    INFERENCE_ORDERED = "inference_ordered"
    INFERENCE_DELIVERED = "inference_delivered"
    INFERENCE_FAILED = "inference_failed"
    DIVIDEND_PAID = "dividend_paid"
    MODEL_PRICE_CHANGED = "model_price_changed"
    # the model market (issue 15): `payloads.KINDS` and `ledger.tournament_rules`
    TOURNAMENT_OPENED = "tournament_opened"
    MODEL_SUBMITTED = "model_submitted"
    MODELS_FROZEN = "models_frozen"
    RESOLUTION_COMMITTED = "resolution_committed"
    TOURNAMENT_RESULT = "tournament_result"
    MODEL_DATASET_SLASHED = "model_dataset_slashed"
    MODEL_SLASHED = "model_slashed"
    TOURNAMENT_REFUND = "tournament_refund"
    MODEL_REWARDED = "model_rewarded"
    MODEL_PAYOUT = "model_payout"
    MODEL_STAKE_RETURNED = "model_stake_returned"
    TOURNAMENT_CLOSED = "tournament_closed"
    TOURNAMENT_ABORTED = "tournament_aborted"
    TOURNAMENT_VERIFIED = "tournament_verified"


class TournamentStatus(StrEnum):
    """A tournament's life: open (submissions) -> frozen (models trained and committed)
    -> resolving (resolution data committed) -> result -> closed (settled); or, before a
    result, aborting (the coordinator gives everything back) -> aborted."""

    OPEN = "open"
    FROZEN = "frozen"
    RESOLVING = "resolving"
    RESULT = "result"
    CLOSED = "closed"
    ABORTING = "aborting"
    ABORTED = "aborted"
