"""What a node signs to attest a round's result.

Every node signs the same bytes: the canonical JSON of the round id, the job digest (hex
SHA-256 over the job spec and input commitments) and the revealed metrics in millionths.
The ledger accepts a `round_result` only if every registered node's signature over these
bytes verifies, so no single party can invent a result.

Since copy detection (issue 13) the bytes also carry `copies` ({counts, samples}: per
dataset, sampled rows that repeat an earlier dataset's row, `copy_rule`); a result
without it (rounds settled before) signs exactly the bytes it always did. Likewise the
job's `beacon` (`beacon.py`: the secret seed of the copy sample and of Banzhaf's sampled
coalitions), signed since it was introduced and absent before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mutualmind.vocabulary.canonical_json import canonical_json

ATTESTATION_DOMAIN = "mutualmind/round-attestation/v1"


def attestation_message(round_id: str, job_digest: str, metrics_micro: list[int],
                        copies: Mapping[str, Sequence[int]] | None = None, beacon: str | None = None) -> bytes:
    """The exact bytes each node signs for `round_id`'s result."""
    body: dict[str, object] = {
        "domain": ATTESTATION_DOMAIN,
        "job_digest": job_digest,
        "metrics_micro": list(metrics_micro),
        "round_id": round_id,
    }
    if copies is not None:
        body["copies"] = {"counts": list(copies["counts"]), "samples": list(copies["samples"])}
    if beacon is not None:
        body["beacon"] = beacon
    return canonical_json(body)
