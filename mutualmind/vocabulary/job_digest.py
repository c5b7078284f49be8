"""The digest that names one MPC job: what was computed, on which inputs.

Every node signs its revealed values together with this digest, and anyone holding the
ledger can recompute it from the round_opened entry and the dataset registrations, so an
attestation cannot be moved to another round, another model or other data. It lives in
the dependency-free ledger package because both sides compute it: the coordinator when
it orders a job, and each node before it agrees to run (and later sign) that job.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from mutualmind.vocabulary.canonical_json import canonical_json

DIGEST_DOMAIN = "mutualmind/job-digest/v1"


def job_digest(round_payload: Mapping[str, Any], datasets: Mapping[str, Mapping[str, Any]]) -> str:
    """Hex SHA-256 over the round id, model spec and every input commitment, in order.

    `round_payload` is the round_opened ledger payload (model spec floats as decimal
    strings); `datasets` maps a dataset id to its dataset_registered payload (rows, cols,
    share commitments as hex).
    """
    def inputs(dataset_id: str) -> dict[str, Any]:
        reg = datasets[dataset_id]
        return {"dataset_id": dataset_id, "rows": reg["rows"], "cols": reg["cols"],
                "share_commitments": reg["share_commitments"]}

    body = {
        "domain": DIGEST_DOMAIN,
        "round_id": round_payload["round_id"],
        "model_spec": round_payload["model_spec"],
        "datasets": [inputs(d) for d in round_payload["datasets"]],
        "validation": inputs(round_payload["validation_dataset"]),
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()
