"""The model market's signed requests: strict before signing, exactly what the ledger stores."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from mutualmind.errors import InvalidInput, MutualMindError
from mutualmind.vocabulary.payloads import request_message, validate_payload
from mutualmind.vocabulary.signing_keys import generate_signing_key, public_key_bytes, verify_raw
from mutualmind.vocabulary.tournament import (
    ModelSubmission,
    TournamentTerms,
    ledger_recipe,
    signed_model_submit,
    signed_tournament_open,
)

TERMS = TournamentTerms("t1", "spon", "binary", "accuracy", 5000, 600_000, 1_800_000_000_000,
                        ("ds-a", "ds-b", "ds-c"))
SUB = ModelSubmission("t1", "m", "m1", {"kind": "mlp", "lr": 0.5, "metric": "accuracy"},
                      ("ds-a", "ds-b", "ds-c"), 100, 2500)


def test_signed_requests_verify_and_fill_in_defaults() -> None:
    key = generate_signing_key()
    payload, signature = signed_tournament_open(key, TERMS)
    assert payload["resolution_publisher"] == "spon"  # the sponsor by default
    assert verify_raw(public_key_bytes(key), request_message("tournament_opened", payload), signature)
    payload, signature = signed_model_submit(key, SUB)
    validate_payload("model_submitted", payload)
    assert payload["recipe"]["lr"] == "0.5" and payload["recipe"]["epochs"] == 20  # ledger form, defaults in
    assert ledger_recipe(payload["recipe"]) == payload["recipe"]
    assert verify_raw(public_key_bytes(key), request_message("model_submitted", payload), signature)


@pytest.mark.parametrize("changes, fragment", [
    ({"weight_cap_ppm": 0}, "weight cap"),
    ({"label_kind": "regression"}, "pairs regression with mse"),
    ({"metric": "auc"}, "metric"),
    ({"pool": 0}, "pool must be positive"),
    ({"datasets": ()}, "non-empty list"),
    ({"datasets": ("ds-a", "ds-a")}, "twice"),
    ({"slash_rate_ppm": 1_000_001}, "parts per million"),
    ({"resolution_publisher": "bad id!"}, "resolution_publisher"),
])
def test_bad_tournament_terms_are_never_signed(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(MutualMindError, match=fragment):
        signed_tournament_open(generate_signing_key(), replace(TERMS, **changes))


@pytest.mark.parametrize("changes, fragment", [
    ({"kept_share_bps": 10_001}, "basis points"),
    ({"recipe": {"kind": "forest"}}, "not supported"),
    ({"recipe": {"kind": "logistic", "depth": 3}}, "unknown fields"),
    ({"stake": 0}, "stake must be positive"),
    ({"datasets": ()}, "non-empty list"),
])
def test_bad_submissions_are_never_signed(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(MutualMindError, match=fragment):
        signed_model_submit(generate_signing_key(), replace(SUB, **changes))


def test_result_payload_shape_is_checked() -> None:
    payload = {"tournament_id": "t1", "job_digest": "00" * 32, "metamodel_metric_micro": 1,
               "contributions_micro": [1], "dataset_contributions_micro": [[1, "2"]],
               "attestations": [{"node_index": 0, "signature": "00" * 64}]}
    with pytest.raises(InvalidInput, match=r"dataset_contributions_micro\[0\]"):
        validate_payload("tournament_result", payload)
