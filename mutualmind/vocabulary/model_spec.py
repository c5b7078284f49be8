"""What to train: model kind and hyper-parameters, parsed from untrusted JSON.

The coordinator sends the model spec as canonical JSON inside every job, and the spec is
part of the job digest every node signs, so parsing is strict: unknown keys, wrong types
and out-of-range values are `InvalidInput` with a message naming the field. Defaults are
filled here (and only here) so that the worker, the plaintext reference and the
benchmark all train exactly the same thing from the same spec.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from mutualmind.errors import Aborted, InvalidInput

MODEL_KINDS = ("logistic", "linear", "softmax", "mlp")
TASKS = ("binary", "multiclass", "regression")
METRICS = ("log_loss", "accuracy", "mse")
# how each dataset is valued: leave-one-out (n+1 models) or Data Banzhaf (2^n coalitions
# exactly up to 8 datasets, Maximum Sample Reuse beyond; `mutualmind.vocabulary.valuation`)
VALUATIONS = ("loo", "banzhaf")
REGRESSION_DEFAULT_LR = 0.1
# the task each kind solves; the MLP's task is chosen by its `task` field
KIND_TASK = {"logistic": "binary", "linear": "regression", "softmax": "multiclass"}
# metrics where a lower value is better (contribution = metric(all but i) - metric(all))
LOWER_IS_BETTER = frozenset({"log_loss", "mse"})
MICRO = 1_000_000  # metrics and contributions travel and are stored in integer millionths
# how the convex models are trained (mpcnode/worker/newton.py): "sgd" is the fixed-schedule
# gradient descent of training.py; "newton" runs `epochs` Newton (IRLS) steps with the
# Hessian solved in secret shares, so the models reach the optimum the valuation assumes
SOLVERS = ("sgd", "newton")
# how the newton solver gets the leave-one-out models (or Data Banzhaf's coalition
# models): "retrain" trains all of them in one batched pass (cost grows with their
# number); "newton_step" trains the full model only and takes every model's last Newton
# step from its iterate with that model's rows (influence-style; cost flat in n)
LOO_METHODS = ("retrain", "newton_step")
NEWTON_KINDS = ("logistic", "linear")
# Newton steps when the spec names none: logistic converges to fixed-point precision in
# 6 from zero (tests/mpcnode/worker/test_newton.py); a linear model needs one (plus one
# to polish the fixed-point inverse)
NEWTON_DEFAULT_EPOCHS = {"logistic": 6, "linear": 2}
# the newton solver's Hessian condition number is bounded through l2 (its inverse's
# iteration count is log2 of that bound); below this the count and the fixed-point error grow
NEWTON_MIN_L2 = 1e-4


@dataclass(frozen=True)
class ModelSpec:
    """A model kind and its hyper-parameters; `batch_size` 0 means full-batch.

    `seed` fixes the public parts of training (MLP initial weights, mini-batch order), so
    every node and the plaintext reference take the same steps. `valuation` chooses how
    datasets are valued: "loo" (leave-one-out) or "banzhaf" (`valuation.py`).
    """

    kind: str = "logistic"
    lr: float = 1.0
    epochs: int = 20
    batch_size: int = 0
    l2: float = 0.0
    hidden: int = 8
    classes: int = 2
    task: str = "binary"
    metric: str = "log_loss"
    seed: int = 0
    valuation: str = "loo"
    solver: str = "sgd"
    loo: str = "retrain"

    @property
    def outputs(self) -> int:
        """Width of the model's output layer: k logits for multiclass, else one."""
        return self.classes if self.task == "multiclass" else 1

    @property
    def higher_is_better(self) -> bool:
        return self.metric not in LOWER_IS_BETTER

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): the form that goes into job digests."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


_FIELD_TYPES: dict[str, type] = {
    "kind": str,
    "lr": float,
    "epochs": int,
    "batch_size": int,
    "l2": float,
    "hidden": int,
    "classes": int,
    "task": str,
    "metric": str,
    "seed": int,
    "valuation": str,
    "solver": str,
    "loo": str,
}


# what each key means, for `--model-spec` in --help (`spec_keys_help`); the parser above
# is the rule, this only describes it
_KEY_HELP = {
    "kind": "|".join(MODEL_KINDS),
    "lr": "learning rate in (0, 100]; 0.1 for regression",
    "epochs": "passes over the rows, 1-10000; Newton steps with solver newton",
    "batch_size": "rows per step; 0 = full batch",
    "l2": "L2 penalty in [0, 10]",
    "hidden": "the mlp's hidden width, 1-1024",
    "classes": "softmax/mlp classes, 2-64",
    "task": f"the mlp's: {'|'.join(TASKS)}",
    "metric": f"{'|'.join(METRICS)}; mse for regression",
    "seed": "fixes the mlp's initial weights and batch order",
    "valuation": "|".join(VALUATIONS),
    "solver": f"{'|'.join(SOLVERS)}; newton: {'/'.join(NEWTON_KINDS)} with l2 >= {NEWTON_MIN_L2}",
    "loo": f"{'|'.join(LOO_METHODS)}; newton_step needs solver newton",
}


def spec_keys_help() -> str:
    """Every model-spec key as `key=default (what it takes)`, for argparse's help."""
    defaults = asdict(ModelSpec())
    return ", ".join(f"{key}={defaults[key]} ({_KEY_HELP[key]})" for key in _FIELD_TYPES)


def parse_model_spec(raw: str | dict[str, object]) -> ModelSpec:
    """Parse and validate a model spec (JSON text or a dict); refuse anything odd."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as err:
            raise InvalidInput(f"model spec is not valid JSON ({err}); send a JSON object") from None
    if not isinstance(raw, dict):
        raise InvalidInput("model spec must be a JSON object such as {\"kind\": \"logistic\"}")
    unknown = sorted(set(raw) - set(_FIELD_TYPES))
    if unknown:
        raise InvalidInput(f"model spec has unknown fields {unknown}; allowed: {sorted(_FIELD_TYPES)}")
    values: dict[str, object] = {}
    for name, kind in _FIELD_TYPES.items():
        if name not in raw:
            continue
        value = raw[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is float and isinstance(value, str):
            # Node-trust change (collect-model / digest check): the coordinator now sends
            # the spec in its ledger form, real numbers as decimal strings ("0.5"), so the
            # node can hash exactly what the ledger holds; the worker itself still gets
            # floats (JobRunner rewrites the spec with ModelSpec.to_json()).
            value = _decimal_text(name, value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InvalidInput(f"model spec field {name!r} must be a {kind.__name__}, got {value!r}")
        values[name] = value
    kind_name = values.get("kind", "logistic")
    if kind_name not in MODEL_KINDS:
        raise InvalidInput(f"model kind {kind_name!r} is not supported; choose one of {MODEL_KINDS}")
    task = KIND_TASK.get(str(kind_name), values.get("task", "binary"))
    if "task" in values and values["task"] != task:
        raise InvalidInput(f"model kind {kind_name!r} solves a {task} task, not {values['task']!r}")
    values["task"] = task
    if task not in TASKS:
        raise InvalidInput(f"task {task!r} is not supported; choose one of {TASKS}")
    if task == "binary":
        values.setdefault("classes", 2)
    if task == "regression":
        values.setdefault("metric", "mse")
        # gradient descent on standardised features converges for lr < 2 / (largest
        # eigenvalue of their correlation matrix), which can reach the feature count
        # (diabetes: 4.0, so lr 1.0 diverges); 0.1 is safe up to 20 and converges in the
        # default 20 epochs. The logistic/softmax gradient is bounded and needs no cut.
        values.setdefault("lr", REGRESSION_DEFAULT_LR)
    if values.get("solver") == "newton":
        # `epochs` counts Newton steps for this solver (each is one pass over the rows)
        values.setdefault("epochs", NEWTON_DEFAULT_EPOCHS.get(str(kind_name), 8))
    spec = ModelSpec(**values)  # type: ignore[arg-type]
    _check_ranges(spec)
    _check_solver(spec)
    return spec


def _decimal_text(name: str, text: str) -> float:
    """A real-valued field written as decimal text, as the ledger stores it."""
    try:
        value = float(Decimal(text))
    except InvalidOperation:
        raise InvalidInput(f"model spec field {name!r} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise InvalidInput(f"model spec field {name!r} must be a finite number, got {text!r}")
    return value


def _check_ranges(spec: ModelSpec) -> None:
    if not 0.0 < spec.lr <= 100.0:
        raise InvalidInput(f"learning rate {spec.lr} must be in (0, 100]")
    if not 1 <= spec.epochs <= 10_000:
        raise InvalidInput(f"epochs {spec.epochs} must be between 1 and 10000")
    if not 0 <= spec.batch_size <= 10_000_000:
        raise InvalidInput(f"batch size {spec.batch_size} must be 0 (full batch) or positive")
    if not 0.0 <= spec.l2 <= 10.0:
        raise InvalidInput(f"L2 penalty {spec.l2} must be in [0, 10]")
    if not 1 <= spec.hidden <= 1024:
        raise InvalidInput(f"hidden width {spec.hidden} must be between 1 and 1024")
    if spec.task == "binary" and spec.classes != 2:
        raise InvalidInput(f"a binary model has 2 classes, not {spec.classes}")
    if spec.task == "multiclass" and not 2 <= spec.classes <= 64:
        raise InvalidInput(f"classes {spec.classes} must be between 2 and 64 for a multiclass model")
    if spec.metric not in METRICS:
        raise InvalidInput(f"metric {spec.metric!r} is not supported; choose one of {METRICS}")
    if spec.task == "regression" and spec.metric != "mse":
        raise InvalidInput(f"a regression model is valued by mse, not {spec.metric!r}")
    if spec.task != "regression" and spec.metric == "mse":
        raise InvalidInput("a classifier is valued by log_loss or accuracy, not mse")
    if spec.valuation not in VALUATIONS:
        raise InvalidInput(f"valuation {spec.valuation!r} is not supported; choose one of {VALUATIONS}")
    if not 0 <= spec.seed < 2**63:
        raise InvalidInput(f"seed {spec.seed} must be a non-negative 63-bit integer")


def _check_solver(spec: ModelSpec) -> None:
    if spec.solver not in SOLVERS:
        raise InvalidInput(f"solver {spec.solver!r} is not supported; choose one of {SOLVERS}")
    if spec.loo not in LOO_METHODS:
        raise InvalidInput(f"loo {spec.loo!r} is not supported; choose one of {LOO_METHODS}")
    if spec.solver == "sgd":
        if spec.loo != "retrain":
            raise InvalidInput(f"loo {spec.loo!r} needs the newton solver; the sgd solver retrains (loo \"retrain\")")
        return
    if spec.kind not in NEWTON_KINDS:
        raise InvalidInput(f"the newton solver trains {NEWTON_KINDS} models, not {spec.kind!r}; use solver \"sgd\"")
    if spec.batch_size != 0:
        raise InvalidInput("the newton solver is full-batch: leave batch_size at 0")
    if spec.l2 < NEWTON_MIN_L2:
        raise InvalidInput(
            f"the newton solver needs an L2 penalty of at least {NEWTON_MIN_L2} (got {spec.l2}): it bounds the "
            "Hessian's condition number, which fixes the secret inverse's iterations; try l2 0.01")
    if spec.epochs > NEWTON_MAX_STEPS:
        raise InvalidInput(f"the newton solver takes at most {NEWTON_MAX_STEPS} steps (epochs), got {spec.epochs}")


# a Newton step costs ~30-60x an SGD step in rounds (the Hessian's inverse); converged
# models need < 10, so more only burns the job's deadline
NEWTON_MAX_STEPS = 30


def to_micro(value: float) -> int:
    """A revealed metric in integer millionths: the unit nodes sign and the ledger stores."""
    if not math.isfinite(value):
        raise InvalidInput(f"metric value {value!r} is not finite")
    return int(round(value * MICRO))


# Work a round may ask of the workers, so that every accepted spec can finish within the
# default 600 s job deadline on the reference machine (docs/performance.md: 2 shared
# cores, 3 parties + dealer). A training step costs ~0.07 s (logistic), ~0.15 s (MLP),
# ~0.35 s (softmax, 10 classes) whatever its size up to ~10k rows, so 1,500 steps take
# at most ~530 s; beyond that time grows with rows (0.63 s per full-batch step of 80,000
# rows, ~8 us per row and epoch), so 10,000,000 rows x epochs take ~80 s of logistic
# work (more for wide models, still bounded). A spec over either cap is refused at open.
MAX_TRAINING_STEPS = 1_500
MAX_ROW_EPOCHS = 10_000_000


def passes(spec: ModelSpec, rules: int) -> int:
    """Full passes over the training rows under workload rule version `rules`: the epochs,
    and with `loo: newton_step` under version 2 one more, the leave-one-out step. Since
    the models' last step is taken from the full model's shared iterate
    (mpcnode/worker/newton.py), that step is the training's last pass, not one more:
    version 3 counts the epochs only; version 2 ledgers replay their over-count."""
    return spec.epochs + (1 if spec.loo == "newton_step" and rules == 2 else 0)


def training_steps(spec: ModelSpec, rows: int, rules: int) -> int:
    """Steps the worker takes on `rows` training rows (the same batching as training.py;
    the newton solver is full-batch; `rules` as for `passes`)."""
    if spec.solver == "newton":
        return passes(spec, rules)
    if spec.batch_size == 0 or spec.batch_size >= rows:
        return spec.epochs
    return spec.epochs * -(-rows // spec.batch_size)


# Versions of the workload rule, a ledger rule replayed by `ledger verify`: a ledger
# records the version it was created under in its genesis params ("workload_rules"),
# and one without it (created before version 2) keeps replaying version 1.
# 1: epochs only; 2: the leave-one-out Newton step counts as one more pass; 3: the
# whole job in model-row passes (`mutualmind.vocabulary.workload`: every model, the
# evaluation, the Newton solves; the Newton step folded into the last pass).
WORKLOAD_RULES = 3


def check_workload(spec: ModelSpec, training_rows: int, rules: int = WORKLOAD_RULES) -> None:
    """InvalidInput unless a worker can train `spec` on `training_rows` rows in time
    (`rules`: the ledger's version of this rule, WORKLOAD_RULES for new ledgers)."""
    if rules < 2:
        spec = replace(spec, loo="retrain")  # version 1 did not count the Newton step
    steps = training_steps(spec, max(training_rows, 1), rules)
    if steps > MAX_TRAINING_STEPS:
        raise InvalidInput(
            f"model spec asks {steps} training steps (epochs {spec.epochs} x batches of "
            f"{spec.batch_size or 'all'} over {training_rows} rows); at most "
            f"{MAX_TRAINING_STEPS} fit a job's deadline: lower epochs or raise batch_size")
    work = training_rows * passes(spec, rules)
    if work > MAX_ROW_EPOCHS:
        step = " + 1 leave-one-out Newton step" if spec.loo == "newton_step" and rules == 2 else ""
        raise InvalidInput(
            f"model spec asks {work} rows x epochs ({training_rows} rows, epochs "
            f"{spec.epochs}{step}); at most {MAX_ROW_EPOCHS} fit a job's deadline: lower epochs")


def contributions_micro(metrics_micro: Sequence[int], metric: str) -> list[int]:
    """Contribution of each provider, in integer millionths, from the n+1 revealed values.

    The one contribution formula: the coordinator settles with it, `admin round verify`
    recomputes with it, and the tests check it. `metrics_micro` is the full model's
    metric first, then each leave-one-out model's (as the nodes sign them, `to_micro`).
    contribution_i = metric(all) - metric(all but i), with the sign flipped for metrics
    where lower is better, so a positive contribution always means "made the model better".
    Integers throughout, so every node, the coordinator and an auditor get the same numbers.
    """
    if len(metrics_micro) < 2:
        raise InvalidInput("need the full model's metric and at least one leave-one-out metric")
    if metric not in METRICS:
        raise InvalidInput(f"metric {metric!r} is not supported; choose one of {METRICS}")
    full, without = metrics_micro[0], metrics_micro[1:]
    if metric in LOWER_IS_BETTER:
        return [m - full for m in without]
    return [full - m for m in without]


# plausible ranges of revealed values; outside them the MPC arithmetic went wrong
_PLAUSIBLE = {"log_loss": (0.0, 100.0), "accuracy": (0.0, 1.0), "mse": (0.0, 1e6)}


def check_plausible(metrics: list[float], metric: str, lr: float | None = None) -> None:
    """Refuse revealed values no correct computation can produce (Aborted).

    Inputs are scaled into a range where no intermediate can leave the ring
    (`column_scale`), so what remains is deterministic: a learning rate too large for the
    data makes training diverge (a linear model's error grows geometrically until its
    weights wrap around), and running the same spec again fails the same way. The
    message says so and names the knob; it never asks for a re-run. (CrypTen's random
    truncation failures are bounded far below one in a million per job by the same
    scaling; see docs/mpc.md.)
    """
    low, high = _PLAUSIBLE[metric]
    slack = 1e-3 * max(1.0, high - low) if metric != "mse" else 0.0
    bad = [v for v in metrics if not math.isfinite(v) or not low - slack <= v <= high + slack]
    if bad:
        rate = f" (lr {lr:g})" if lr is not None else ""
        raise Aborted(
            f"the MPC computation revealed impossible {metric} values {bad[:3]}: the model's "
            f"training diverged and its weights overflowed the fixed-point range; the learning "
            f"rate{rate} is too large for these datasets - open a round with a smaller lr "
            "(running this one again gives the same result); nothing was attested"
        )


def spec_for_ledger(spec: dict[str, Any]) -> dict[str, Any]:
    """A model spec with its real-valued fields as decimal strings."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise InvalidInput(f"model spec field {key!r} must be a finite number")
            out[key] = repr(value)
        elif isinstance(value, (str, int, bool)) or value is None:
            out[key] = value
        else:
            raise InvalidInput(f"model spec field {key!r} must be a number or a string")
    return out


def spec_from_ledger(spec: dict[str, Any]) -> dict[str, Any]:
    """The inverse of `spec_for_ledger` for display: real-valued fields back to numbers.

    The ledger keeps reals as decimal text so the digest is exact; a person or script
    reading `round show --json` expects `"lr": 1.0`, not `"lr": "1.0"`. Text that is not
    a decimal is left as it is (display never refuses what the ledger holds).
    """
    out = dict(spec)
    for key, kind in _FIELD_TYPES.items():
        value = out.get(key)
        if kind is float and isinstance(value, str):
            try:
                number = float(Decimal(value))
            except InvalidOperation:
                continue
            if math.isfinite(number):
                out[key] = number
    return out
