"""A modeler's frozen tournament model: what a node releases of it, and how the modeler checks it.

At the freeze each node wrote one share file per model: the full model (variant 0) and
its per-dataset variants, laid out as `"<variant>/<tensor>"` in one manifest, and every
node signed `tournament_job.model_commitment` over all nodes' SHA-256 of their files. The
modeler may take the full model only: the variants are models without one dataset each,
which the datasets' terms never sold to it. So a node cuts variant 0 out of its file
(`full_model_part`) and signs, in its receipt, the digest of the whole file it cut from
(`frozen_facts`). The modeler recomputes the ledger's commitment from every node's signed
file digest (`check_frozen_shares`): a node that released bytes other than the frozen
ones must sign a false statement about its own frozen file to do so. The column exponents
are public (the freeze's result) and let the modeler fold the scaling back
(`model_file.fold_exponents`), so the model predicts on raw rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mutualmind.errors import IntegrityError
from mutualmind.vocabulary.model_file import fold_exponents
from mutualmind.vocabulary.tournament_job import model_commitment

FULL_MODEL = "0/"


def full_model_part(data: bytes, manifest: Sequence[Mapping[str, Any]]) -> tuple[bytes, list[dict[str, Any]]]:
    """The full model's tensors (variant 0) of a frozen share file, packed afresh, and
    their manifest with plain tensor names; IntegrityError if the file holds none."""
    flat = np.frombuffer(data, dtype="<i8")
    chunks, out, offset = [], [], 0
    for entry in sorted(manifest, key=lambda e: str(e["name"])):
        name = str(entry["name"])
        if not name.startswith(FULL_MODEL):
            continue
        shape = [int(d) for d in entry["shape"]]
        size = int(np.prod(shape)) if shape else 1
        start = int(entry["offset"])
        if start < 0 or start + size > flat.size:
            raise IntegrityError(f"the frozen share file is shorter than its manifest says ({name!r})")
        chunks.append(flat[start:start + size].tobytes())
        out.append({"name": name[len(FULL_MODEL):], "shape": shape, "offset": offset})
        offset += size
    if not out:
        raise IntegrityError("the frozen share file holds no full model (variant 0)")
    return b"".join(chunks), out


def frozen_facts(model_id: str, recipe: Mapping[str, Any], datasets: Sequence[str], file_sha256: str,
                 feature_exponents: Sequence[int], label_exponent: int) -> dict[str, Any]:
    """What a node signs about the frozen file its released share was cut from, with the
    model's recipe and datasets as the modeler's signed submission gave them."""
    return {"model_id": model_id, "recipe": dict(recipe), "datasets": list(datasets),
            "share_file_sha256": file_sha256, "feature_exponents": [int(e) for e in feature_exponents],
            "label_exponent": int(label_exponent)}


def check_frozen_shares(tournament_id: str, model_id: str, commitment: str,
                        facts: Sequence[Mapping[str, Any]]) -> None:
    """IntegrityError unless every node's signed file digest (node order) gives the
    ledger's frozen commitment of the model and the nodes agree on the exponents."""
    digests = [str(f["share_file_sha256"]) for f in facts]
    if model_commitment(tournament_id, model_id, digests) != commitment:
        raise IntegrityError(
            f"the nodes' frozen share files do not give model {model_id!r}'s commitment on the "
            f"ledger ({commitment[:16]}...); these are not the frozen model's shares, do not use them")
    public = [{k: v for k, v in f.items() if k != "share_file_sha256"} for f in facts]
    if any(p != public[0] for p in public[1:]):
        raise IntegrityError(f"the nodes state different recipes, datasets or column exponents for "
                             f"model {model_id!r}; do not use these shares")


def unscaled(tensors: Mapping[str, np.ndarray], facts: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The reconstructed model in raw units: the freeze's public exponents folded in."""
    model = dict(tensors)
    model["normalise_exponent"] = np.asarray([facts["feature_exponents"]], dtype=np.float64)
    if "label_mean" in model:  # a regression target was scaled; class labels never are
        model["label_exponent"] = np.asarray([[facts["label_exponent"]]], dtype=np.float64)
    return fold_exponents(model)
