"""The trained model as it stays on the nodes: one additive share per node, raw int64.

Each node's worker writes `weights.bin` (its shares of the full model's parameters and
of the normalisation statistics, little-endian int64, fixed point with 16 fractional
bits) and a manifest (name, shape, offset in elements) in its result. Only the sponsor
collects every node's share; `reconstruct` adds them in Z/2^64 and decodes, and
`predict` applies the model to raw rows. Nothing here is ever unpickled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mutualmind.errors import IntegrityError, InvalidInput
from mutualmind.vocabulary.fixed_point import SCALE
from mutualmind.vocabulary.model_spec import ModelSpec

Manifest = Sequence[dict[str, object]]

# What a released model may hold: the full model's parameters and the normalisation
# pooled over all of the round's training datasets (one row each). Never a leave-one-out
# model or a statistic of one dataset: with a round of at least 3 datasets (every
# dataset's terms say so) the pooled means reveal no single provider's column means.
MODEL_PARAMETERS = frozenset({"weight", "bias", "hidden_weight", "hidden_bias"})
POOLED_STATISTICS = frozenset({"normalise_mean", "normalise_scale", "label_mean", "label_scale"})
RELEASED_TENSORS = MODEL_PARAMETERS | POOLED_STATISTICS


def check_released(manifest: Manifest) -> None:
    """IntegrityError unless a released share holds only `RELEASED_TENSORS`, each
    statistic a single pooled row (a per-dataset statistic would have one row each)."""
    for entry in manifest:
        name, shape = str(entry.get("name")), entry.get("shape")
        if name not in RELEASED_TENSORS:
            raise IntegrityError(f"the released model holds tensor {name!r}; a model carries only "
                                 f"{sorted(RELEASED_TENSORS)} (no per-dataset statistics)")
        if name in POOLED_STATISTICS and (not isinstance(shape, list) or len(shape) != 2
                                          or shape[0] != 1):
            raise IntegrityError(f"the released model's {name!r} has shape {shape}; a pooled "
                                 "statistic is one row [1, columns]")


def read_share(data: bytes, manifest: Manifest) -> dict[str, np.ndarray]:
    """One node's share file split into named int64 arrays; refuses a size mismatch."""
    if len(data) % 8:
        raise IntegrityError(f"model share has {len(data)} bytes, not a whole number of int64 values")
    flat = np.frombuffer(data, dtype="<i8")
    tensors: dict[str, np.ndarray] = {}
    for entry in manifest:
        fields: Mapping[str, Any] = entry  # JSON values, checked by the conversions below
        try:
            name, shape, offset = str(fields["name"]), [int(d) for d in fields["shape"]], int(fields["offset"])
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidInput(f"model manifest entry {entry!r} is malformed: {err}") from None
        size = int(np.prod(shape)) if shape else 1
        if offset < 0 or offset + size > flat.size:
            raise IntegrityError(f"model share is too short for tensor {name!r} (needs {offset + size} values, has {flat.size})")
        tensors[name] = flat[offset : offset + size].reshape(shape)
    return tensors


def read_share_file(path: Path, manifest: Manifest) -> dict[str, np.ndarray]:
    return read_share(Path(path).read_bytes(), manifest)


def reconstruct(shares: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Add every node's shares (mod 2^64) and decode the fixed point to float64."""
    if len(shares) < 2:
        raise InvalidInput("reconstructing a model needs the shares of every node (at least two)")
    names = set(shares[0])
    if any(set(s) != names for s in shares[1:]):
        raise IntegrityError("the nodes' model shares name different tensors; they are not shares of one model")
    model = {}
    for name in sorted(names):
        total = np.zeros_like(shares[0][name])
        with np.errstate(over="ignore"):
            for share in shares:
                if share[name].shape != total.shape:
                    raise IntegrityError(f"tensor {name!r} has different shapes on different nodes")
                total = total + share[name]
        model[name] = total.astype(np.float64) / SCALE
    return fold_exponents(model)


def fold_exponents(model: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Undo the providers' public power-of-two column scaling (`column_scale`) in float64.

    The nodes trained on x' = x * 2^-E; (x' - m') * s = (x - m' 2^E) * (s 2^-E), so the
    released statistics become raw-unit ones and the model predicts on raw rows. Done
    here, in float64, because s 2^-E (1 / a standard deviation in dollars) is far below
    the 2^-16 resolution of the nodes' fixed point.
    """
    model = dict(model)
    for exponent, mean, scale in (
        ("normalise_exponent", "normalise_mean", "normalise_scale"),
        ("label_exponent", "label_mean", "label_scale"),
    ):
        if exponent not in model:
            continue
        powers = np.exp2(np.round(model.pop(exponent)))
        if mean not in model or scale not in model:
            raise IntegrityError(f"the model carries {exponent!r} but no {mean!r}/{scale!r} to fold it into")
        model[mean] = model[mean] * powers
        model[scale] = model[scale] / powers
    return model


def predict_logits(model: dict[str, np.ndarray], spec: ModelSpec, raw: np.ndarray) -> np.ndarray:
    """The model's logits [rows, outputs] on raw (unnormalised) feature rows."""
    x = (np.asarray(raw, dtype=np.float64) - model["normalise_mean"]) * model["normalise_scale"]
    if spec.kind == "mlp":
        x = np.maximum(x @ model["hidden_weight"] + model["hidden_bias"], 0.0)
    return x @ model["weight"] + model["bias"]


def predict(model: dict[str, np.ndarray], spec: ModelSpec, raw: np.ndarray) -> np.ndarray:
    """Class labels (classifiers) or values (regression) for raw feature rows."""
    logits = predict_logits(model, spec, raw)
    if spec.task == "binary":
        return (logits[:, 0] > 0).astype(np.float64)
    if spec.task == "multiclass":
        return logits.argmax(axis=1).astype(np.float64)
    # regression models predict the standardised target
    return logits[:, 0] / model["label_scale"][0, 0] + model["label_mean"][0, 0]
