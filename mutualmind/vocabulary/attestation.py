"""What a node signs to attest a round's result.

Every node signs the same bytes: the canonical JSON of the round id, the job digest (hex
SHA-256 over the job spec and input commitments) and the revealed metrics in millionths.
The ledger accepts a `round_result` only if every registered node's signature over these
bytes verifies, so no single party can invent a result.
"""

from __future__ import annotations

from mutualmind.vocabulary.canonical_json import canonical_json

ATTESTATION_DOMAIN = "mutualmind/round-attestation/v1"


def attestation_message(round_id: str, job_digest: str, metrics_micro: list[int]) -> bytes:
    """The exact bytes each node signs for `round_id`'s result."""
    return canonical_json(
        {
            "domain": ATTESTATION_DOMAIN,
            "job_digest": job_digest,
            "metrics_micro": list(metrics_micro),
            "round_id": round_id,
        }
    )
