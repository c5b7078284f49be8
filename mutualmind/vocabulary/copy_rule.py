"""When a dataset counts as a copy of rows registered before it (issue 13, free riders).

The nodes compare a public sample of each dataset's rows with every row of the datasets
before it in the round's order (`mpcnode.worker.copy_detection`) and reveal only, per
dataset, how many sampled rows lie within the tolerance of an earlier row (`counts`)
and how many rows were sampled (`samples`). Both lists are part of what every node
signs (`attestation.attestation_message`) and of the round_result entry.

The rule is integer arithmetic on those two numbers, shared by the coordinator's
settlement, the ledger's slash rule and `admin round verify`:
a dataset is a copy when count * COPY_DENOMINATOR >= samples * COPY_NUMERATOR and
samples > 0, i.e. when at least a quarter of its sampled rows repeat earlier rows. A
quarter, not a half: a half copy (half the rows copied) must be caught, and a sample of
64 rows of a half copy falls below 16 copied rows with probability ~3e-5, while honest
rows from the same distribution are within the tolerance of an earlier row with
probability below 1 % on every table measured (docs/copy-detection.md).
A copy earns nothing and is slashed at the round's slash rate; the dataset it copied
(registered earlier) keeps its value.

"Earlier" is the order in which the datasets were registered on the ledger; the nodes see
the round's list, so a round lists its datasets in registration order (`order_error`):
otherwise a sponsor could list a copy before its original and have the original slashed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mutualmind.errors import InvalidInput

COPY_NUMERATOR = 1
COPY_DENOMINATOR = 4
# a round's result may carry at most this many sampled rows per dataset
MAX_SAMPLE_ROWS = 1 << 16


def is_copy(count: int, samples: int) -> bool:
    """At least COPY_NUMERATOR / COPY_DENOMINATOR of the sampled rows are copies."""
    return samples > 0 and count * COPY_DENOMINATOR >= samples * COPY_NUMERATOR


def check_copies(value: Any, datasets: int) -> dict[str, list[int]]:
    """A result's `copies` field: {counts: [n], samples: [n]}, 0 <= count <= samples."""
    if type(value) is not dict or set(value) != {"counts", "samples"}:
        raise InvalidInput("copies must be an object with exactly the fields counts and samples")
    counts, samples = value["counts"], value["samples"]
    for name, values in (("counts", counts), ("samples", samples)):
        if type(values) is not list or len(values) != datasets:
            raise InvalidInput(f"copies.{name} must list one integer per dataset ({datasets})")
        if not all(type(v) is int and 0 <= v <= MAX_SAMPLE_ROWS for v in values):
            raise InvalidInput(f"copies.{name} must hold integers in [0, {MAX_SAMPLE_ROWS}]")
    if any(c > s for c, s in zip(counts, samples, strict=True)):
        raise InvalidInput("copies.counts may not exceed copies.samples for any dataset")
    return {"counts": list(counts), "samples": list(samples)}


def copied_indices(counts: Sequence[int], samples: Sequence[int]) -> list[int]:
    """The (0-based) datasets these counts mark as copies: the job trains no model on them."""
    return [j for j, (c, s) in enumerate(zip(counts, samples, strict=True)) if is_copy(c, s)]


def copied_datasets(datasets: Sequence[str], copies: Mapping[str, Sequence[int]] | None) -> frozenset[str]:
    """The round's datasets that the revealed counts mark as copies (none without counts:
    rounds settled before copy detection)."""
    if not copies:
        return frozenset()
    return frozenset(d for d, c, s in zip(datasets, copies["counts"], copies["samples"], strict=True) if is_copy(c, s))


def order_error(datasets: Sequence[str], registered: Sequence[str]) -> str | None:
    """Why `datasets` (a round's list) is not in registration order (`registered`: every
    dataset id in the order registered), or None. Ids not registered are left to the
    ledger's rules, which name them."""
    position = {d: i for i, d in enumerate(registered)}
    known = [d for d in datasets if d in position]
    expected = sorted(known, key=position.__getitem__)
    if known == expected:
        return None
    return (f"list the round's datasets in the order they were registered ({', '.join(expected)}): "
            "copy detection takes an earlier registration for the original of a copy")
