"""How much memory a party's job will need, checked before it joins the others.

A job that does not fit must be refused up front with a message that says what to
change, never killed by the kernel's OOM killer mid-round (a killed party fails the
whole round after every other party has done its work). The estimate is deliberately
conservative and is checked against measured peaks: `tests/mpcnode/worker/
test_scale.py` runs a row-limit job (the parties in one process) and asserts its growth
stays below the parties' `estimate_bytes` less `BASE_BYTES`; the benchmarks
(bench/train.py, bench/scaling.py) report each party process's peak.

What a party holds (docs/performance.md, "Memory"):
  * the process itself: Python, torch, CrypTen and gloo (`BASE_BYTES`);
  * its share of the job's tables, once: [rows, features + 1] int64 for training and
    validation (standardised in place; nothing else is row-sized);
  * one chunk of a pass over a table (normalisation, alignment, evaluation), bounded by
    `normalisation.CHUNK_ELEMENTS` whatever the row count;
  * one training step: a batch of rows and the m models' logits and gradients on it,
    with CrypTen's temporaries (the comparison of the hard sigmoid works on binary
    shares of every logit, several copies at a time); a newton step also the weighted
    rows of its Hessian, [models trained, rows, features + 2];
  * the dealer material prefetched for the run (at most `MATERIAL_BUDGET_BYTES`, held
    twice by party 0 while it unpacks the dealer's answer).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mpcnode.worker.dealer_prefetch import MATERIAL_BUDGET_BYTES
from mpcnode.worker.normalisation import CHUNK_ELEMENTS
from mutualmind.errors import QuotaExceeded
from mutualmind.vocabulary.model_spec import ModelSpec

INT64 = 8
MIB = 1 << 20
# a worker that has imported torch and CrypTen and joined gloo, with CrypTen's and
# gloo's buffers; calibrated so the estimate covers the measured peaks (VmHWM) of a
# real job at 1,000,000 rows x 30 features, 8 providers: 1,623 MB on party 0 (which
# receives the dealer's material), 1,425-1,442 MB on the others
BASE_BYTES = 768 * MIB
# copies of a pass chunk alive at once (operands, Beaver triple, opened values, result;
# evaluation's exp and log on the models' activations make the most)
CHUNK_COPIES = 32
# party 0 holds the dealer's answer twice while it unpacks it (the message and tensors)
MATERIAL_COPIES = 2
# copies of a step's [m, batch, outputs] tensors alive at once: the comparison of the
# hard sigmoid holds binary shares of both shifted copies plus carry-save terms
STEP_LOGIT_COPIES = 128
STEP_ROW_COPIES = 6  # the batch of features: gathered, its Beaver operands, the gradient's
# a newton step (newton.py) also holds W x~ for every trained model, [m, rows, features + 2]
# with the residual: its product's Beaver operands, the concatenation and the matmul's
NEWTON_ROW_COPIES = 8


@dataclass(frozen=True)
class JobShape:
    """What the memory of a job depends on (all public)."""

    train_rows: int
    validation_rows: int
    features: int
    models: int  # m = providers + 1 (the full model and one without each provider)
    spec: ModelSpec

    @property
    def batch_rows(self) -> int:
        batch = self.spec.batch_size
        return self.train_rows if batch == 0 or batch >= self.train_rows else batch

    @property
    def newton_values_per_row(self) -> int:
        """Values per row of a Newton step's Hessian operand, over the models it trains
        (all m for loo "retrain", the full model only for "newton_step"); 0 for sgd."""
        if self.spec.solver != "newton":
            return 0
        trained = 1 if self.spec.loo == "newton_step" else self.models
        return trained * (self.features + 2)

    @property
    def outputs_per_row(self) -> int:
        """Values per row and model in a step's activations (logits, and the MLP's hidden)."""
        return self.spec.outputs + (self.spec.hidden if self.spec.kind == "mlp" else 0)


def measured_peak_bytes() -> int:
    """This process's peak resident memory since it started (its exec).

    Linux's VmHWM, not getrusage's ru_maxrss: ru_maxrss keeps the parent's resident
    size at fork across exec, so a worker started by a big node (or a benchmark holding
    a table) would report its parent's memory as its own.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def estimate_bytes(shape: JobShape) -> int:
    """A conservative peak of one party's process for `shape` (see the module doc)."""
    tables = INT64 * (shape.train_rows + shape.validation_rows) * (shape.features + 1)
    chunk = INT64 * CHUNK_ELEMENTS * CHUNK_COPIES
    step = INT64 * shape.batch_rows * (
        STEP_ROW_COPIES * shape.features + STEP_LOGIT_COPIES * shape.models * shape.outputs_per_row
        + NEWTON_ROW_COPIES * shape.newton_values_per_row
    )
    return BASE_BYTES + tables + chunk + step + MATERIAL_COPIES * MATERIAL_BUDGET_BYTES


def largest_batch(shape: JobShape, budget_bytes: int) -> int:
    """The largest batch size that fits `budget_bytes` with everything else of `shape`."""
    fixed = estimate_bytes(JobShape(shape.train_rows, shape.validation_rows, shape.features, shape.models,
                                    _with_batch(shape.spec, 1)))
    per_row = INT64 * (STEP_ROW_COPIES * shape.features + STEP_LOGIT_COPIES * shape.models * shape.outputs_per_row)
    return max(0, (budget_bytes - fixed) // per_row + 1)


def _with_batch(spec: ModelSpec, batch_size: int) -> ModelSpec:
    return replace(spec, batch_size=batch_size)


def check_memory(budget_bytes: int, shape: JobShape) -> int:
    """The estimate, or QuotaExceeded saying what to change when it exceeds the budget."""
    need = estimate_bytes(shape)
    if need <= budget_bytes:
        return need
    advice = []
    batch = largest_batch(shape, budget_bytes) if shape.spec.solver == "sgd" else 0
    if shape.spec.solver == "newton" and shape.spec.loo == "retrain":
        advice.append('set the model spec\'s loo to "newton_step" (it trains one model, not one per provider)')
    if batch >= 1 and batch < shape.batch_rows:
        advice.append(f"set the model spec's batch_size to at most {batch:,} (it is "
                      f"{'full batch' if shape.spec.batch_size == 0 else shape.spec.batch_size})")
    table_gib = INT64 * (shape.train_rows + shape.validation_rows) * (shape.features + 1) / (1 << 30)
    advice.append(f"include fewer rows (the tables alone take {table_gib:.2f} GiB per node)")
    advice.append("or give the node's workers more memory (mutualmind node serve --worker-memory-mb)")
    raise QuotaExceeded(
        f"this job needs about {need / (1 << 30):.2f} GiB per node "
        f"({shape.train_rows:,} training and {shape.validation_rows:,} validation rows x "
        f"{shape.features} features, {shape.models} models, batches of {shape.batch_rows:,} rows) "
        f"but a node's worker may use {budget_bytes / (1 << 30):.2f} GiB: " + "; ".join(advice)
    )
