"""The coordinator accepts a tournament's freeze or result only when every registered
node signed the same values for this tournament and job (real keys, a real ledger)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.cluster_link import JobOrder, NodeJobReport
from coordinator.rounds import Rounds
from coordinator.tournaments import Tournaments
from ledger import Ledger
from mutualmind.errors import IntegrityError
from mutualmind.vocabulary.signing_keys import generate_signing_key, public_key_bytes, sign
from mutualmind.vocabulary.tournament import freeze_attestation_message, result_attestation_message
from tests.coordinator.admin.settled_round import NODES, AttestingLink

DIGEST = "ab" * 32
ORDER = JobOrder(job_id="t1-resolve", round_id="t1", world_size=NODES, master_addr="127.0.0.1", master_port=29500,
                 dataset_ids=("res",), validation_dataset_id="", model_spec_json="{}", job_digest=DIGEST,
                 deadline_s=60.0)


def test_nodes_that_disagree_or_sign_with_another_key_are_refused(tmp_path: Path) -> None:
    keys = [generate_signing_key() for _ in range(NODES)]
    with Ledger.create(tmp_path / "ledger.db", generate_signing_key(), params={}) as ledger:
        ledger.append_many([("node_registered", {"node_index": i, "name": f"node{i}",
                                                 "signing_key": public_key_bytes(k).hex()}, None)
                            for i, k in enumerate(keys)])
        tournaments = Tournaments(ledger, Rounds(ledger, AttestingLink(keys), tmp_path / "rounds"), tmp_path / "t")

        def result(index: int, metric: int, key: object = None) -> NodeJobReport:
            payload = result_attestation_message("t1", DIGEST, metric, [20_000, -3_000], [[1, 2], [3]])
            return NodeJobReport(state="done", attestation_payload=payload,
                                 attestation=sign(key or keys[index], payload))  # type: ignore[arg-type]

        numbers, attestations = tournaments.result_attestations(ORDER, [result(i, 600_000) for i in range(NODES)])
        assert numbers == {"metamodel_metric_micro": 600_000, "contributions_micro": [20_000, -3_000],
                           "dataset_contributions_micro": [[1, 2], [3]]}
        assert [a["node_index"] for a in attestations] == list(range(NODES))
        with pytest.raises(IntegrityError, match="disagree"):
            tournaments.result_attestations(ORDER, [result(0, 600_000), result(1, 600_000), result(2, 600_001)])
        with pytest.raises(IntegrityError, match="node 1's attestation signature"):
            tournaments.result_attestations(ORDER, [result(0, 1), result(1, 1, generate_signing_key()), result(2, 1)])

        def frozen(index: int, commitments: list[str]) -> NodeJobReport:
            payload = freeze_attestation_message("t1", DIGEST, commitments)
            return NodeJobReport(state="done", attestation_payload=payload, attestation=sign(keys[index], payload))

        same = ["cd" * 32, "ef" * 32]
        assert tournaments.freeze_attestations(ORDER, [frozen(i, same) for i in range(NODES)])[0] == same
        with pytest.raises(IntegrityError, match="disagree"):
            tournaments.freeze_attestations(ORDER, [frozen(0, same), frozen(1, same), frozen(2, same[::-1])])
        other = freeze_attestation_message("t2", DIGEST, same)
        with pytest.raises(IntegrityError, match="another tournament"):
            tournaments.freeze_attestations(ORDER, [NodeJobReport("done", attestation_payload=other,
                                                                  attestation=sign(keys[0], other))] * NODES)
