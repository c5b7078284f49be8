"""The frozen model's cut and its check (issue 15): only variant 0 leaves a node, and the
modeler recomputes the ledger's commitment from the file digests every node signed."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from mutualmind.errors import IntegrityError
from mutualmind.vocabulary.tournament_collect import (
    check_frozen_shares,
    frozen_facts,
    full_model_part,
)
from mutualmind.vocabulary.tournament_job import model_commitment

RECIPE = {"kind": "logistic", "task": "binary", "metric": "log_loss", "epochs": 5}


def _file(seed: int) -> tuple[bytes, list[dict[str, object]]]:
    """A frozen share file as the worker lays it out: sorted "<variant>/<tensor>" names."""
    rng = np.random.default_rng(seed)
    manifest, chunks, offset = [], [], 0
    for name, shape in sorted({"0/bias": [1, 1], "0/weight": [3, 1], "1/bias": [1, 1], "1/weight": [3, 1],
                               "0/normalise_mean": [1, 3]}.items()):
        values = rng.integers(-2**62, 2**62, size=shape, dtype=np.int64)
        manifest.append({"name": name, "shape": shape, "offset": offset})
        chunks.append(values.astype("<i8").tobytes())
        offset += values.size
    return b"".join(chunks), manifest


def test_only_the_full_model_is_cut_out_and_repacked() -> None:
    data, manifest = _file(1)
    cut, cut_manifest = full_model_part(data, manifest)
    flat = np.frombuffer(data, dtype="<i8")
    assert [m["name"] for m in cut_manifest] == ["bias", "normalise_mean", "weight"]
    assert len(cut) == 8 * (1 + 3 + 3)
    by_name = {str(m["name"]): m for m in manifest}
    weight = next(m for m in cut_manifest if m["name"] == "weight")
    start = int(by_name["0/weight"]["offset"])  # type: ignore[call-overload]
    assert np.frombuffer(cut, dtype="<i8")[weight["offset"]:weight["offset"] + 3].tolist() \
        == flat[start:start + 3].tolist()
    with pytest.raises(IntegrityError, match="no full model"):
        full_model_part(data, [m for m in manifest if not str(m["name"]).startswith("0/")])


def test_the_commitment_is_recomputed_from_every_nodes_signed_digest() -> None:
    digests = [hashlib.sha256(_file(i)[0]).hexdigest() for i in range(3)]
    commitment = model_commitment("t1", "good", digests)
    facts = [frozen_facts("good", RECIPE, ["a", "b"], d, [3, 4, 5], 0) for d in digests]
    check_frozen_shares("t1", "good", commitment, facts)
    swapped = [facts[0], facts[1], frozen_facts("good", RECIPE, ["a", "b"], digests[0], [3, 4, 5], 0)]
    with pytest.raises(IntegrityError, match="commitment"):
        check_frozen_shares("t1", "good", commitment, swapped)
    with pytest.raises(IntegrityError, match="commitment"):
        check_frozen_shares("t1", "good-copy", commitment, facts)   # another model's id
    odd = [*facts[:2], frozen_facts("good", RECIPE, ["a", "b"], digests[2], [3, 4, 6], 0)]
    with pytest.raises(IntegrityError, match="exponents"):
        check_frozen_shares("t1", "good", commitment, odd)
