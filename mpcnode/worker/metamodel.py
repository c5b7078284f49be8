"""A tournament's resolution in MPC: K models' predictions, the stake-weighted metamodel,
its metric and every model's contribution, revealing only those numbers (issue 15).

Inputs are secret-shared: each model's weights with its own standardisation statistics
(the `weights` a training job keeps: "weight" [F, 1], "bias" [1, 1] - for the MLP also
"hidden_weight" [F, H], "hidden_bias" [1, H] and "weight" [H, 1] -, `normalise_mean` and
`normalise_scale` [1, F], for a linear model `label_mean` and `label_scale`; see
`training.py`), and the resolution rows (raw features
[rows, F] in the same column units the models were trained on - the caller aligns the
providers' column exponents as a job does, `normalisation.align_columns` - and labels
[rows, 1]). Public: the stakes and the tournament's weight cap, from which the K + 1
weight vectors (the metamodel, then the metamodel without each model) are computed in
plaintext (`mutualmind.vocabulary.metamodel_weights`).

The computation, all K + 1 metamodels in one batched pass (the rounds do not grow with K):
1. Each model's standardisation is folded into its first layer once, on [K, F] values:
   v_k = scale_k * w_k, c_k = b_k - mean_k . v_k, so x . v_k + c_k equals the model's
   (x - mean_k) * scale_k . w_k + b_k without standardising the table K times.
2. Probabilities p = sigmoid(logits) [K, rows, 1] (the exact logistic, as the rounds'
   log-loss values a model: `evaluation.py` uses softplus of the same logits); for a
   multiclass task class-probability vectors p = softmax(logits) [K, rows, C] (the
   training's few-round softmax, `softmax_training`: the same algorithm in the reference).
3. The K + 1 metamodels m_j = sum_k W[j, k] p_k / 10^6 with public integer ppm weights
   W (`Backend.weighted_sums`: an exact integer product, one truncation per sum); a metamodel with no model left (K = 1)
   is the uninformed baseline 1/2 (1/C per class).
4. Their metrics from `evaluation.py` (log-loss of probabilities, or accuracy of the
   sign of m - 1/2; multiclass: the log of the smoothed probability of the true class,
   or accuracy of the arg-max class), summed over rows on the shares; K + 1 numbers revealed. The
   contributions follow in public integers (`contributions_micro`: positive = the model
   made the metamodel better).

Kinds: "logistic" and binary "mlp" (log_loss or accuracy; they mix in one metamodel,
each group of one forward shape runs `layers.forward` once, the MLP with the
standardisation folded into its first layer), and "linear" (regression; mse in units of
the resolution target's variance, each model's predictions brought from its training
target's units, `_to_target_units`), and "softmax" with multiclass "mlp" (a multiclass
task: every model has the same C classes, the metamodel mixes class-probability vectors;
log_loss or accuracy). A sellable metamodel (`fold_metamodel`) stays binary-only.
Per-dataset contributions within a model need the model's per-dataset variants (trained
without each dataset, in the freeze's batched job); given those weights, the same pass
evaluates them as extra models (columns of W) with one extra metamodel (row of W) per
variant, in which the variant takes its model's weight. The same code runs on `PlainBackend` (the reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from mpcnode.worker.backend import Backend, PlainBackend, Tensor
from mpcnode.worker.evaluation import (
    PROBABILITY_SMOOTHING,
    correct_rows,
    log_loss_of_probabilities,
    squared_error_sums,
)
from mpcnode.worker.layers import forward
from mpcnode.worker.normalisation import Standardisation, apply_in_place, fit, row_chunks
from mpcnode.worker.training import LABEL_MEAN, LABEL_SCALE, NORMALISE_MEAN, NORMALISE_SCALE
from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.metamodel_weights import PPM, leave_one_out_weights, metamodel_weights
from mutualmind.vocabulary.model_spec import ModelSpec, contributions_micro, to_micro

SUPPORTED_KINDS = {"logistic": ("log_loss", "accuracy"), "mlp": ("log_loss", "accuracy"), "linear": ("mse",),
                   "softmax": ("log_loss", "accuracy")}
# the prediction of a metamodel with no model in it: "no idea" for a binary label, the
# resolution target's mean (0 once standardised) for a regression
BINARY_BASELINE = 0.5


@dataclass(frozen=True)
class Resolution:
    """What a resolution reveals, as floats and as the integers nodes sign."""

    metric: str
    weights_ppm: list[int]               # each model's weight in the metamodel
    metamodel_metric: float
    without_metrics: list[float]         # the metamodel without model j, per j
    metamodel_metric_micro: int
    contributions_micro: list[int]       # per model, positive = made the metamodel better
    # per variant (a model retrained without one of its datasets): how much the dataset
    # made the metamodel better through its model (the metamodel with the variant in its
    # model's place, against the metamodel)
    variant_contributions_micro: list[int] = field(default_factory=list)


def resolve(
    backend: Backend,
    metric: str,
    specs: Sequence[ModelSpec],
    models: Sequence[dict[str, Tensor]],
    x: Tensor,
    y: Tensor,
    stakes: Sequence[int],
    cap_ppm: int,
    variants: Sequence[int] = (),
    leaders: Sequence[int] | None = None,
) -> Resolution:
    """Every model's predictions, the metamodel and its K leave-one-model-out variants,
    their metrics; reveals only the K + 1 metrics (see the module docstring).

    `variants[v]` names the model (0..K-1) that `specs[K + v]` / `models[K + v]` stand in
    for (that model trained without one of its datasets): each adds one metamodel, the
    metamodel with the variant in its model's place, and one revealed metric.
    `leaders` (`metamodel_weights.copy_leaders`) makes copies leave as one group: the
    metamodel without model j drops j's whole group, and a variant stands in for its
    whole group at the group's weight."""
    count = len(stakes)
    if len(specs) != count + len(variants) or len(models) != len(specs) \
            or any(not 0 <= k < count for k in variants):
        raise InvalidInput(f"need one spec, one model and one stake per model, and a spec and a model per "
                           f"variant of a model ({len(specs)}, {len(models)}, {count}, {len(variants)} variants)")
    classes = _check(metric, specs[:count], models[:count], stakes, x, y)
    if any(s.outputs != specs[0].outputs for s in specs):
        raise InvalidInput("every variant must have its model's classes")
    weights = _weight_rows(stakes, cap_ppm, variants, leaders)
    groups = _groups(specs)
    folded = {key: _fold(backend, key, [models[i] for i in members]) for key, members in groups.items()}
    if metric == "mse":
        # the target in units of the resolution's own spread (the rounds' MSE is in units
        # of the pooled training target's), each model's predictions brought to them
        target = fit(backend, y)
        y = apply_in_place(backend, y.clone(), target)
        (key,) = folded  # _check: one kind, linear
        params = folded[key]
        params["weight"], params["bias"] = _to_target_units(backend, models, target, params["weight"], params["bias"])
    rows = int(x.size(0))
    total: Tensor | None = None
    # a chunk bounds the rows of features, the MLPs' hidden units and the metamodels
    hidden = sum(s.hidden for s in specs if s.kind == "mlp")
    width = max(int(x.size(1)), hidden, len(models) * len(weights) * max(classes, 1))
    for start, stop in row_chunks(rows, width):
        logits = _logits(backend, groups, folded, x[start:stop], len(models))
        part = _chunk_sums(backend, metric, logits, y[start:stop], weights, classes)
        total = part if total is None else total + part
    assert total is not None  # _check: rows > 0
    # log-loss and squared-error sums are fixed point (divide before revealing); counts may be
    # integer-encoded comparison results (divide after)
    values = backend.reveal(total if metric == "accuracy" else total.div(rows)).reshape(-1)
    if metric == "accuracy":
        values = values / rows
    metrics = [float(v) for v in values]
    micro = [to_micro(v) for v in metrics]
    return Resolution(
        metric=metric, weights_ppm=[int(w) for w in weights[0, :count].tolist()], metamodel_metric=metrics[0],
        without_metrics=metrics[1:count + 1], metamodel_metric_micro=micro[0],
        contributions_micro=contributions_micro(micro[:count + 1], metric),
        variant_contributions_micro=[contributions_micro([micro[0], m], metric)[0] for m in micro[count + 1:]],
    )


@dataclass(frozen=True)
class FoldedMetamodel:
    """The frozen full models, their standardisation folded in once (step 1), and the
    metamodel's public weights: what a closed tournament's metamodel answers queries with."""

    groups: dict[GroupKey, list[int]]
    folded: dict[GroupKey, dict[str, Tensor]]
    weights: torch.Tensor     # [1, K] integer ppm: the metamodel row of `_weight_rows`
    width: int                # a row chunk's bound (features, hidden units, models)


def fold_metamodel(backend: Backend, specs: Sequence[ModelSpec], models: Sequence[dict[str, Tensor]],
                   stakes: Sequence[int], cap_ppm: int) -> FoldedMetamodel:
    """Fold every frozen model once for `metamodel_probabilities` (binary tasks only: the
    metamodel averages probabilities, so its answer is one probability per row)."""
    if not specs or len(specs) != len(models) or len(models) != len(stakes):
        raise InvalidInput(f"need one spec, one model and one stake per model ({len(specs)}, {len(models)}, {len(stakes)})")
    if any(s.task != "binary" or s.kind not in ("logistic", "mlp") for s in specs):
        raise InvalidInput(f"a metamodel answers queries for binary tasks (logistic and binary mlp models) "
                           f"only, not kinds {sorted({s.kind for s in specs})}")
    groups = _groups(specs)
    folded = {key: _fold(backend, key, [models[i] for i in members]) for key, members in groups.items()}
    features = int(models[0][NORMALISE_SCALE].size(-1))
    hidden = sum(s.hidden for s in specs if s.kind == "mlp")
    weights = torch.tensor([metamodel_weights(stakes, cap_ppm)], dtype=torch.long)
    return FoldedMetamodel(groups, folded, weights, max(features, hidden, len(models)))


def metamodel_probabilities(backend: Backend, metamodel: FoldedMetamodel, x: Tensor) -> Tensor:
    """The metamodel's probability of the positive class on rows `x` ([r, F] in the
    freeze's column units): steps 2-3 of the resolution, the metamodel row only; [r, 1]."""
    count = int(metamodel.weights.size(1))
    logits = _logits(backend, metamodel.groups, metamodel.folded, x, count)
    mixed = backend.weighted_sums(backend.logistic(logits), metamodel.weights, PPM)  # [1, r, 1]
    return mixed.reshape(int(x.size(0)), 1)


def plaintext_resolution(
    metric: str,
    specs: Sequence[ModelSpec],
    models: Sequence[dict[str, torch.Tensor]],
    x: torch.Tensor,
    y: torch.Tensor,
    stakes: Sequence[int],
    cap_ppm: int,
    variants: Sequence[int] = (),
    leaders: Sequence[int] | None = None,
) -> Resolution:
    """The reference: the same algorithm on float64 torch tensors (never on secret data)."""
    plain = [{name: value.to(torch.float64) for name, value in model.items()} for model in models]
    return resolve(PlainBackend(), metric, specs, plain, x.to(torch.float64), y.to(torch.float64), stakes, cap_ppm,
                   variants, leaders)


def _check(metric: str, specs: Sequence[ModelSpec], models: Sequence[dict[str, Tensor]], stakes: Sequence[int],
           x: Tensor, y: Tensor) -> int:
    """Refuse what the resolution cannot score; the task's class count (0: not multiclass)."""
    if not specs or len(specs) != len(models) or len(models) != len(stakes):
        raise InvalidInput(f"need one spec, one model and one stake per model ({len(specs)}, {len(models)}, {len(stakes)})")
    unsupported = sorted({s.kind for s in specs} - set(SUPPORTED_KINDS))
    if unsupported:
        raise InvalidInput(f"the resolution supports model kinds {sorted(SUPPORTED_KINDS)} so far, not {unsupported}")
    one_task = all(s.task == "binary" for s in specs) or all(s.kind == "linear" for s in specs) \
        or all(s.task == "multiclass" and s.classes == specs[0].classes for s in specs)
    if not one_task or any(metric not in SUPPORTED_KINDS[s.kind] for s in specs):
        raise InvalidInput(f"every model must solve the tournament's task: kinds {sorted({s.kind for s in specs})} "
                           f"with metric {metric!r} (logistic and binary mlp: log_loss or accuracy; linear: mse; "
                           "softmax and multiclass mlp, all with the same classes: log_loss or accuracy)")
    if int(x.size(0)) == 0 or int(x.size(0)) != int(y.size(0)):
        raise InvalidInput(f"resolution rows: {int(x.size(0))} feature rows and {int(y.size(0))} labels")
    features = int(x.size(1))
    for index, model in enumerate(models):
        if int(model[NORMALISE_SCALE].size(-1)) != features:
            raise InvalidInput(f"model {index} has {int(model[NORMALISE_SCALE].size(-1))} features, the rows have {features}")
    return specs[0].classes if specs[0].task == "multiclass" else 0


def _weight_rows(stakes: Sequence[int], cap_ppm: int, variants: Sequence[int] = (),
                 leaders: Sequence[int] | None = None) -> torch.Tensor:
    """[K + 1 + V, K + V] integer ppm: the metamodel, the metamodel without each model
    (and its copies), then the metamodel with each variant in its model's place (at the
    weight of the model and its copies, which leave)."""
    full = metamodel_weights(stakes, cap_ppm)
    group = list(leaders) if leaders is not None else list(range(len(stakes)))
    padding = [0] * len(variants)
    rows = [full + padding, *(row + padding for row in leave_one_out_weights(stakes, cap_ppm, group))]
    for position, model in enumerate(variants):
        row = full + padding
        members = [i for i in range(len(full)) if group[i] == group[model]]
        row[len(full) + position] = sum(full[i] for i in members)
        for i in members:
            row[i] = 0
        rows.append(row)
    return torch.tensor(rows, dtype=torch.long)


# a group of models that share one forward pass: the linear kinds, or MLPs of one width
GroupKey = tuple[str, int]


def _groups(specs: Sequence[ModelSpec]) -> dict[GroupKey, list[int]]:
    """Model indices by forward shape, in submission order within each group."""
    groups: dict[GroupKey, list[int]] = {}
    for index, spec in enumerate(specs):
        key = ("mlp", spec.hidden) if spec.kind == "mlp" else ("linear", 0)
        groups.setdefault(key, []).append(index)
    return groups


def _fold(backend: Backend, key: GroupKey, models: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
    """The group's parameters stacked [K_g, ...], each model's standardisation folded
    into its first layer: W' = scale^T * W, b' = b - mean . W' (one product on [K_g, F, width]
    and one [K_g, 1, F] x [K_g, F, width] matmul: two rounds)."""
    features = int(models[0][NORMALISE_SCALE].size(-1))
    names = ["hidden_weight", "hidden_bias", "weight", "bias"] if key[0] == "mlp" else ["weight", "bias"]
    stacked = {name: backend.cat([m[name].unsqueeze(0) for m in models], dim=0) for name in names}
    scale = backend.cat([m[NORMALISE_SCALE].reshape(1, features, 1) for m in models], dim=0)
    mean = backend.cat([m[NORMALISE_MEAN].reshape(1, 1, features) for m in models], dim=0)
    first, first_bias = names[0], names[1]
    stacked[first] = scale * stacked[first]
    stacked[first_bias] = stacked[first_bias] - mean.matmul(stacked[first])
    return stacked


def _logits(backend: Backend, groups: dict[GroupKey, list[int]], folded: dict[GroupKey, dict[str, Tensor]],
            x: Tensor, count: int) -> Tensor:
    """Every model's logits on these rows, [K, r, 1] in submission order (`layers.forward`
    per group: x . W' + b' is the model on its own standardised features)."""
    outputs: dict[int, Tensor] = {}
    for key, members in groups.items():
        spec = ModelSpec(kind="mlp", hidden=key[1]) if key[0] == "mlp" else ModelSpec(kind="logistic")
        logits, _, _ = forward(backend, spec, folded[key], x)
        if len(groups) == 1:
            return logits
        for position, index in enumerate(members):
            outputs[index] = logits[position : position + 1]
    return backend.cat([outputs[index] for index in range(count)], dim=0)


def _to_target_units(backend: Backend, models: Sequence[dict[str, Tensor]], target: Standardisation,
                     weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """Fold each linear model's target de-standardisation and the resolution's target
    standardisation into its weights: the model predicts t_k in units of its training
    target, raw_k = t_k * std_k + mean_k (std_k = 1 / label_scale_k, from
    `Backend.inverse_std` of its square: range-reduced, no reciprocal), and the resolution
    compares (raw_k - mean_r) * scale_r. So v'_k = v_k a_k and c'_k = c_k a_k + b_k with
    a_k = std_k scale_r, b_k = (mean_k - mean_r) scale_r: products on [K, F] only."""
    count = len(models)
    label_scale = backend.cat([m[LABEL_SCALE].reshape(1) for m in models], dim=0)
    label_mean = backend.cat([m[LABEL_MEAN].reshape(1, 1, 1) for m in models], dim=0)
    spread = backend.inverse_std(label_scale.square(), 1).reshape(count, 1, 1)
    factor = spread * target.scale.reshape(1, 1, 1)
    shift = (label_mean - target.mean.reshape(1, 1, 1)) * target.scale.reshape(1, 1, 1)
    return weight * factor, bias * factor + shift


def _chunk_sums(backend: Backend, metric: str, logits: Tensor, y: Tensor, weights: torch.Tensor,
                classes: int = 0) -> Tensor:
    """The K + 1 metamodels' metric sums over these rows from the models' logits [K, r, 1]
    ([K, r, C] for a multiclass task of `classes` C): [K + 1, 1]."""
    if classes:
        return _multiclass_sums(backend, metric, logits, y, weights, classes)
    predictions = logits if metric == "mse" else backend.logistic(logits)
    count = int(weights.size(0))
    mixed = backend.weighted_sums(predictions, weights, PPM)  # [K + 1, r, 1]
    if metric == "mse":
        return squared_error_sums(mixed, y)  # an empty row predicts 0: the target's mean
    empty = (weights.sum(1) == 0).to(torch.float64) * BINARY_BASELINE  # rows of W with no model
    metamodels = mixed + empty.reshape(count, 1, 1)
    if metric == "log_loss":
        return log_loss_of_probabilities(backend, metamodels, y)
    spec = ModelSpec(kind="logistic", task="binary", metric="accuracy")
    return correct_rows(backend, spec, metamodels - 0.5, y)


def _multiclass_sums(backend: Backend, metric: str, logits: Tensor, y: Tensor, weights: torch.Tensor,
                     classes: int) -> Tensor:
    """`_chunk_sums` of a multiclass task: the metamodels mix the models' class-probability
    vectors [K, r, C]; log-loss is -log of the probability given to the true class,
    smoothed as p' = e + (1 - C e) p (the binary smoothing's rule: the vector still sums
    to 1, a log argument of at least e); accuracy counts rows whose arg-max class is true."""
    metamodels = _mix_classes(backend, logits, weights, classes)
    target = backend.one_hot(y, classes)  # [r, C]
    if metric == "accuracy":
        spec = ModelSpec(kind="softmax", task="multiclass", classes=classes, metric="accuracy")
        return correct_rows(backend, spec, metamodels, target)
    true_class = (metamodels * target).sum(-1, keepdim=True)  # [K + 1, r, 1]
    smoothed = true_class * (1 - classes * PROBABILITY_SMOOTHING) + PROBABILITY_SMOOTHING
    return -backend.log(smoothed).sum(1)


def _mix_classes(backend: Backend, logits: Tensor, weights: torch.Tensor, classes: int) -> Tensor:
    """The metamodels' class-probability vectors [J, r, C] from the models' logits
    [K, r, C] and the public ppm weights [J, K]; a row of W with no model is 1/C per class."""
    count = int(weights.size(0))
    mixed = backend.weighted_sums(backend.softmax(logits, -1), weights, PPM)
    empty = (weights.sum(1) == 0).to(torch.float64) / classes
    return mixed + empty.reshape(count, 1, 1)
