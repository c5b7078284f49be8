"""How much work a round asks of the nodes, counted as the MPC job does it (rule version 3).

`round_opened` is refused unless the job it asks for can finish within a job's deadline
(a ledger rule, replayed by `ledger verify`). Versions 1 and 2 (`model_spec.check_workload`,
with `valuation.check_banzhaf_workload` for Banzhaf) counted one model's passes over the
rows: they let a leave-one-out retrain of n+1 models through at n+1 times the cap, and
capped a `newton_step` Banzhaf round as if it retrained every coalition. Version 3 counts
what the worker does (mpcnode/worker/run.py, training.py, newton.py, banzhaf.py):

    work = training passes + evaluation + Newton solves        (in model-row passes)

* training passes: `retrain` (SGD or Newton, leave-one-out or Banzhaf) trains every model
  in one batched pass, each model on every row (a row mask), so models x rows x epochs;
  `newton_step` trains the full model only and folds every model's step into the last of
  its `epochs` passes (one batched matmul of per-provider sums, as costly as one pass), so
  rows x epochs whatever the number of models;
* evaluation: every model's metric on the validation rows, models x validation rows;
* Newton solves: one (d+1)^2 Newton-Schulz inverse per model and step (retrain: models x
  epochs; newton_step: epochs - 1 for the full model, then one per model), SOLVE_ROWS each.

Models: n+1 for leave-one-out, 2^n (exact) or MSR_SAMPLES + 1 Banzhaf coalitions
(`valuation.model_count`). Measured with `bench/valuation.py` (3 parties, logistic, newton
solver, 6 features, 400 validation rows, 4 providers, 800 and 1,600 rows; docs/mpc.md):
a model-row pass moves ~6-7 KB (summed over the parties), a validation row ~8 KB per model,
a solve ~0.24 MB (~40 row passes); rounds do not grow with models or rows (~1,400-1,550 a
job), so the steps cap of version 2 stays. A job's time follows its bytes at scale: 51
models x 800,000 rows (40.8 million model-row passes) took 420 s of steps and 512 s in all
(docs/performance.md), too close to the 600 s deadline to promise; MAX_WORK = 20 million
keeps the steps near 210 s at that rate and within ~520 s at the slowest rate measured
(~26 us per model-row pass, 256 models on a 455-row table). Copy detection is bounded on
its own (`copy_detection.MAX_COMPARISONS`). These rates were measured with the adder
comparison; from 8,192 compared elements training now uses the packed one (36 % of its
bytes, `comparison.PACKED_FROM`), so a large job's steps are faster than the cap assumes:
it errs on the safe side.
"""

from __future__ import annotations

from dataclasses import dataclass

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.model_spec import WORKLOAD_RULES, ModelSpec, check_workload
from mutualmind.vocabulary.valuation import check_banzhaf_workload, model_count

MAX_WORK = 20_000_000   # model-row passes a job may ask (version 3)
SOLVE_ROWS = 64         # one model's Newton solve, in row passes (measured ~40 at 6 features)


@dataclass(frozen=True)
class JobWork:
    """The work of one round's job, in model-row passes, by part."""

    models: int
    training: int
    evaluation: int
    solves: int

    @property
    def total(self) -> int:
        return self.training + self.evaluation + self.solves


def job_work(spec: ModelSpec, training_rows: int, providers: int, validation_rows: int) -> JobWork:
    """What a round's job computes (version 3's count; the module docstring says why)."""
    models = model_count(spec.valuation, providers)
    stepped = spec.loo == "newton_step"
    training = training_rows * spec.epochs * (1 if stepped else models)
    solves = 0
    if spec.solver == "newton":
        solves = SOLVE_ROWS * ((spec.epochs - 1 + models) if stepped else models * spec.epochs)
    return JobWork(models, training, models * validation_rows, solves)


def check_round_workload(spec: ModelSpec, training_rows: int, providers: int, validation_rows: int,
                         rules: int = WORKLOAD_RULES) -> None:
    """InvalidInput unless a round's job fits a job's deadline under the ledger's rule
    version `rules` (1 and 2 replay exactly what they always did)."""
    if rules < 3:
        check_workload(spec, training_rows, rules)
        if spec.valuation == "banzhaf":
            check_banzhaf_workload(spec.epochs, training_rows, providers)
        return
    check_workload(spec, training_rows, rules)   # the steps, and one model's passes
    work = job_work(spec, training_rows, providers, validation_rows)
    if work.total > MAX_WORK:
        raise InvalidInput(_over_cap(spec, training_rows, providers, validation_rows, work))


def _over_cap(spec: ModelSpec, rows: int, providers: int, validation_rows: int, work: JobWork) -> str:
    """What the job would compute, and what to reduce."""
    per = "model" if work.models == 1 else "models"
    what = "Banzhaf coalition" if spec.valuation == "banzhaf" else "leave-one-out"
    if spec.loo == "newton_step":
        trained = f"{rows} rows x {spec.epochs} epochs (one model; the {work.models} {per} by one Newton step)"
    else:
        trained = f"{work.models} {what} {per} x {rows} rows x {spec.epochs} epochs"
    hints = ["lower epochs", "include fewer rows"]
    if spec.loo != "newton_step":
        hints.append("include fewer datasets")
        if spec.solver == "newton":
            hints.append('use loo "newton_step"')
        elif spec.kind in ("logistic", "linear"):
            hints.append('use solver "newton" with loo "newton_step"')
    if work.evaluation * 4 > work.total:
        hints.append("use a smaller validation set")
    return (f"model spec asks {work.total} model-row passes ({trained} + {work.models} x "
            f"{validation_rows} validation rows + {work.solves} for the Newton solves); at most "
            f"{MAX_WORK} fit a job's deadline: {', '.join(hints)}")
