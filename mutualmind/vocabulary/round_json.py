"""A round as a JSON object for scripts, from a RoundView (Market or Admin GetRound).

In the vocabulary because both roles print it: the operator's `admin round show --json`
and the sponsor's `provider round-show --json` must agree key for key. Pure: nothing
here talks to the network.
"""

from __future__ import annotations

import json
from typing import Any

from mutualmind.vocabulary.model_spec import spec_from_ledger
from proto import market_pb2


def round_json(view: market_pb2.RoundView) -> dict[str, Any]:
    """Status, terms, each participant's contribution, its standard error and payout, and
    the job's stats. `error_micro` is in every round's participants, so scripts read one
    shape: a Banzhaf round's recorded error, 0 for leave-one-out (no sampling error; the
    payouts used 0 too)."""
    return {
        "round_id": view.round_id, "status": view.status, "sponsor": view.sponsor,
        "pool": view.pool, "model_spec": round_spec(view),
        "validation_dataset": view.validation_dataset,
        "participants": [{
            "dataset_id": p.dataset_id, "provider_id": p.provider_id, "rows": p.rows,
            "stake": p.stake, "contribution_micro": p.contribution_micro, "error_micro": p.error_micro,
            "payout": p.payout, "slashed": p.slashed} for p in view.participants],
        "metrics_micro": list(view.metrics_micro), "job_digest": view.job_digest,
        "message": view.message, "refund_to_sponsor": view.refund_to_sponsor,
        "expires_at_ms": view.expires_at_ms, "failed_runs": view.failed_runs,
        "inference_price_per_1000_rows": view.inference_price_per_1000_rows,
        "communication": round_parties(view),
    }


def round_parties(view: market_pb2.RoundView) -> list[dict[str, Any]]:
    """The per-node stats of the round's job ({"parties": [...]}), [] when absent or bad."""
    try:
        stats = json.loads(view.stats_json or "{}")
    except json.JSONDecodeError:
        return []
    parties = stats.get("parties") if isinstance(stats, dict) else None
    if not isinstance(parties, list):
        return []
    return [p if isinstance(p, dict) else {} for p in parties]


def shows_errors(view: market_pb2.RoundView) -> bool:
    """Whether a round's values carry standard errors worth a column: Banzhaf rounds
    (exact ones show their 0). Leave-one-out rounds print as they always did."""
    return round_spec(view).get("valuation") == "banzhaf"


def round_spec(view: market_pb2.RoundView) -> dict[str, Any]:
    """The round's model spec for display, reals as numbers (the ledger keeps text)."""
    try:
        spec = json.loads(view.model_spec_json or "{}")
    except json.JSONDecodeError:
        return {}
    return spec_from_ledger(spec) if isinstance(spec, dict) else {}
