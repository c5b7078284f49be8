"""Data Banzhaf valuation: which coalitions are trained, what is revealed, how it pays.

A model spec with `"valuation": "banzhaf"` values dataset i by its Banzhaf value
(Wang & Jia, "Data Banzhaf", AISTATS 2023):

    value_i = mean U(S) over coalitions S that contain i  -  mean U(S) over those that do not

where U(S) is the validation metric of the model trained on the rows of coalition S
(sign flipped for metrics where lower is better, as for leave-one-out).

- Exact (n <= EXACT_LIMIT datasets): all 2^n coalitions, each a row mask of one batched
  training pass. The value has no sampling error: its standard error is 0. (Fixed-point
  noise of the MPC arithmetic is not a sampling error; it is the same for leave-one-out
  and is what the round's epsilon dead band and `admin round verify`'s tolerance are for.)
- Maximum Sample Reuse (n > EXACT_LIMIT): MSR_SAMPLES coalitions, each dataset in each
  with probability 1/2, drawn from a seed derived from the job (round id, model spec,
  dataset ids and the job's random beacon, on the ledger with the result), so every
  node, a re-run and an auditor draw the same ones, and no provider knows them when it
  shares its data. Every
  sample updates every dataset's "in" or "out" mean (pyDVL's MSRSampler), and the
  standard error is sqrt(s_in^2 / k_in + s_out^2 / k_out) with the unbiased sample
  variances of the two groups (pyDVL's MSRResultUpdater combines the same two terms).
  A draw where some dataset is in (or out of) fewer than 2 samples is redrawn with the
  next counter, deterministically.

What the nodes reveal and sign (`metrics_micro`, 2n+1 values): the full model's metric,
then each dataset's raw difference mean_in - mean_out of the metric, then each standard
error. The per-coalition metrics stay secret-shared: revealing them would publish, among
others, the metric of a model trained on one dataset alone (a singleton coalition),
which says far more about that dataset than its value does, and 2^8 numbers per round
instead of 2n+1. The estimator is linear in the coalition metrics, so the nodes compute
it on the shares (variance: one batched square) and reveal only its result.

Payouts use the value minus its error band (`K_SIGMA` standard errors): a dataset is paid
only if value - K_SIGMA * error > epsilon, in proportion to that lower bound; it is
slashed only if value + K_SIGMA * error < -epsilon. With error 0 (leave-one-out, exact
Banzhaf) these are today's rules unchanged. Pure Python, no torch: the ledger's rules and
the coordinator use the same functions.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.model_spec import (
    LOWER_IS_BETTER,
    METRICS,
    contributions_micro,
    parse_model_spec,
)

EXACT_LIMIT = 8            # up to this many datasets, every one of the 2^n coalitions
MSR_SAMPLES = 256          # sampled coalitions beyond it (the cost of exact at 8 datasets)
MIN_GROUP = 2              # samples each dataset needs in and out (a sample variance needs 2)
K_SIGMA = 2                # the error band of payouts and slashes, in standard errors
SEED_DOMAIN = "mutualmind/banzhaf-msr/v1"
EXACT = "exact"
MSR = "msr"


@dataclass(frozen=True)
class Coalitions:
    """The models of a Banzhaf pass: model 0 is the full coalition (the released model);
    the estimator uses models `first..` (exact: all 2^n, the full one included; MSR: the
    sampled ones). `members[j][i]` says whether dataset i is in model j's coalition."""

    method: str
    members: tuple[tuple[bool, ...], ...]
    first: int

    @property
    def models(self) -> int:
        return len(self.members)

    @property
    def providers(self) -> int:
        return len(self.members[0])

    @property
    def samples(self) -> tuple[tuple[bool, ...], ...]:
        return self.members[self.first:]


def msr_seed(round_id: str, spec_json: str, dataset_ids: Sequence[str], beacon: str = "") -> bytes:
    """The seed of a job's MSR coalitions: the round, its normalised model spec
    (`ModelSpec.to_json()`), its datasets in order and the job's beacon (`beacon.py`:
    random, drawn when the job starts, so no provider knows the coalitions when it
    shares its data; "" only in tests and benchmarks without a coordinator)."""
    body = {"domain": SEED_DOMAIN, "round_id": round_id, "model_spec": json.loads(spec_json),
            "datasets": list(dataset_ids)}
    if beacon:
        body["beacon"] = beacon
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).digest()


def plan(providers: int, seed: bytes, *, method: str | None = None, samples: int = MSR_SAMPLES) -> Coalitions:
    """The coalitions to train: exact for `providers` <= EXACT_LIMIT, else MSR
    (`method` forces one; tests use it to compare MSR with exact on few datasets)."""
    if providers < 1:
        raise InvalidInput("a Banzhaf valuation needs at least one dataset")
    chosen = method or (EXACT if providers <= EXACT_LIMIT else MSR)
    full = (True,) * providers
    if chosen == EXACT:
        if providers > 16:
            raise InvalidInput(f"exact Banzhaf over {providers} datasets needs 2^{providers} models; use MSR")
        others = [tuple(bool(mask >> i & 1) for i in range(providers)) for mask in range(2**providers - 1)]
        return Coalitions(EXACT, (full, *others), 0)
    if chosen != MSR:
        raise InvalidInput(f"Banzhaf method {chosen!r} is neither {EXACT!r} nor {MSR!r}")
    if samples < 2 * MIN_GROUP:
        raise InvalidInput(f"MSR needs at least {2 * MIN_GROUP} samples, got {samples}")
    for counter in range(1000):
        drawn = _draw(providers, samples, seed, counter)
        inside = [sum(s[i] for s in drawn) for i in range(providers)]
        if all(MIN_GROUP <= k <= samples - MIN_GROUP for k in inside):
            return Coalitions(MSR, (full, *drawn), 1)
    raise InvalidInput(f"could not draw {samples} coalitions with every dataset in and out of two")


def _draw(providers: int, samples: int, seed: bytes, counter: int) -> list[tuple[bool, ...]]:
    """samples x providers fair bits from SHAKE-256(seed || counter): language-neutral."""
    stream = hashlib.shake_256(seed + counter.to_bytes(4, "big")).digest(-(-samples * providers // 8))
    bits = [stream[k // 8] >> (k % 8) & 1 for k in range(samples * providers)]
    return [tuple(bool(b) for b in bits[j * providers:(j + 1) * providers]) for j in range(samples)]


def estimate(utilities: Sequence[float], coalitions: Coalitions) -> tuple[list[float], list[float]]:
    """(value, standard error) per dataset from the metric of every model, in plaintext.

    The reference of what the nodes compute on shares (`mpcnode.worker.banzhaf`);
    values are mean_in - mean_out of `utilities` (raw metric, no sign flip)."""
    if len(utilities) != coalitions.models:
        raise InvalidInput(f"{coalitions.models} models, {len(utilities)} metrics")
    used = list(utilities[coalitions.first:])
    values, errors = [], []
    for i in range(coalitions.providers):
        inside = [u for u, s in zip(used, coalitions.samples, strict=True) if s[i]]
        outside = [u for u, s in zip(used, coalitions.samples, strict=True) if not s[i]]
        mean_in, mean_out = sum(inside) / len(inside), sum(outside) / len(outside)
        values.append(mean_in - mean_out)
        if coalitions.method == EXACT:
            errors.append(0.0)
            continue
        var_in = sum((u - mean_in) ** 2 for u in inside) / (len(inside) - 1)
        var_out = sum((u - mean_out) ** 2 for u in outside) / (len(outside) - 1)
        errors.append(math.sqrt(var_in / len(inside) + var_out / len(outside)))
    return values, errors


def model_count(valuation: str, providers: int) -> int:
    """Models a job trains in its batched pass: n+1 for leave-one-out, 2^n for exact
    Banzhaf, the full model and MSR_SAMPLES coalitions beyond EXACT_LIMIT datasets."""
    if valuation != "banzhaf":
        return providers + 1
    return 2**providers if providers <= EXACT_LIMIT else MSR_SAMPLES + 1


# A Banzhaf pass costs bytes and time in proportion to models x rows x epochs (every model
# has its own activations and comparisons): measured ~4 KB and ~26 us per unit (bench/loo.py
# --banzhaf, 256 models x 455 rows x 10 epochs: 4.8 GB, 30 s on the loaded reference
# machine), so 20,000,000 units keep a job within the default 600 s deadline. Leave-one-out
# rounds are not counted here (their rule predates this one; docs/performance.md).
MAX_BANZHAF_WORK = 20_000_000


def check_banzhaf_workload(epochs: int, training_rows: int, providers: int) -> None:
    """InvalidInput unless a Banzhaf pass over `providers` datasets fits a job's deadline."""
    models = model_count("banzhaf", providers)
    work = models * training_rows * epochs
    if work > MAX_BANZHAF_WORK:
        raise InvalidInput(
            f"a Banzhaf valuation trains {models} models: {models} x {training_rows} rows x "
            f"{epochs} epochs = {work} model-row-epochs, above the {MAX_BANZHAF_WORK} a job's "
            "deadline fits; lower epochs, include fewer rows, or use valuation loo")


def revealed_count(valuation: str, providers: int) -> int:
    """How many values the nodes reveal and sign for `providers` datasets."""
    return 2 * providers + 1 if valuation == "banzhaf" else providers + 1


def banzhaf_result_micro(metrics_micro: Sequence[int], metric: str, providers: int) -> tuple[list[int], list[int]]:
    """(contributions, standard errors) in millionths from the 2n+1 signed values.

    contribution_i = mean_in - mean_out of the metric, sign flipped where lower is better,
    so a positive contribution always means "made the model better"."""
    if metric not in METRICS:
        raise InvalidInput(f"metric {metric!r} is not supported; choose one of {METRICS}")
    if len(metrics_micro) != 2 * providers + 1:
        raise InvalidInput(f"a Banzhaf result for {providers} datasets has {2 * providers + 1} "
                           f"values (full metric, differences, errors), got {len(metrics_micro)}")
    differences = list(metrics_micro[1:providers + 1])
    errors = list(metrics_micro[providers + 1:])
    if any(e < 0 for e in errors):
        raise InvalidInput(f"standard errors must not be negative, got {errors}")
    if metric in LOWER_IS_BETTER:
        return [-d for d in differences], errors
    return differences, errors


def lower_bound(contribution_micro: int, error_micro: int) -> int:
    """What a contribution is worth beyond its noise: value - K_SIGMA * error."""
    return contribution_micro - K_SIGMA * error_micro


def upper_bound(contribution_micro: int, error_micro: int) -> int:
    return contribution_micro + K_SIGMA * error_micro


def earns(contribution_micro: int, error_micro: int, epsilon_micro: int) -> bool:
    """Paid only when the value is above +epsilon even at the low end of its band."""
    return lower_bound(contribution_micro, error_micro) > epsilon_micro


def slashable(contribution_micro: int, error_micro: int, epsilon_micro: int) -> bool:
    """Slashed only when the value is below -epsilon even at the high end of its band."""
    return upper_bound(contribution_micro, error_micro) < -epsilon_micro


def round_result_micro(metrics_micro: Sequence[int], model_spec: dict[str, object],
                       providers: int) -> tuple[list[int], list[int] | None]:
    """(contributions, standard errors or None) of a round from its signed values: the one
    place the coordinator, `admin round verify` and the ledger's rules derive them.

    Leave-one-out rounds keep their formula exactly as it always was (metric looked up in
    the spec as written, errors None); Banzhaf rounds use the parsed spec's metric."""
    if model_spec.get("valuation", "loo") != "banzhaf":
        return contributions_micro(metrics_micro, str(model_spec.get("metric", "log_loss"))), None
    return banzhaf_result_micro(metrics_micro, parse_model_spec(dict(model_spec)).metric, providers)
