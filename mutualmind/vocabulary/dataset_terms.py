"""A dataset's terms of use: what its provider consents to, checked at every round open.

A provider signs its dataset's terms into the `dataset_registered` entry, or later into
a `dataset_terms_updated` entry (`mutualmind.vocabulary.payloads` checks their shape).
Every `round_opened` is checked against the terms of each training dataset it includes
(`check_round`), by the coordinator before it appends and by the ledger's rules on
append and on every replay, so a round the providers did not agree to can never be on
a valid ledger. The terms:

- `min_datasets`: fewest training datasets a round may have (never below 3: a round of
  one dataset reveals that dataset's column statistics through the model's
  normalisation, of two each provider learns the other's from its own).
- `model_kinds`: the model kinds the data may train.
- `max_slash_rate_ppm`: the largest share of the stake a round may slash.
- `min_pool_per_row`: the pool must hold at least this many tokens per training row of
  the round (pool >= min_pool_per_row x rows of all its training datasets).
- `sponsors`: the only sponsors allowed (empty: anyone).

A dataset registered without terms (ledgers written before terms existed) is bound by
`DEFAULT_TERMS`, chosen to be safe: at least 3 datasets, at most half the stake slashed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mutualmind.errors import RuleViolation
from mutualmind.vocabulary.model_spec import MODEL_KINDS
from mutualmind.vocabulary.payloads import MIN_DATASETS_FLOOR
from mutualmind.vocabulary.payloads import terms as check_terms_shape


@dataclass(frozen=True)
class DatasetTerms:
    """A provider's terms for one dataset (defaults: the safe terms of `DEFAULT_TERMS`)."""

    min_datasets: int = MIN_DATASETS_FLOOR
    model_kinds: tuple[str, ...] = MODEL_KINDS
    max_slash_rate_ppm: int = 500_000
    min_pool_per_row: int = 0
    sponsors: tuple[str, ...] = ()

    def to_payload(self) -> dict[str, Any]:
        """The `terms` object of a ledger payload (checked, so nothing malformed is signed)."""
        payload = {"min_datasets": self.min_datasets, "model_kinds": list(self.model_kinds),
                   "max_slash_rate_ppm": self.max_slash_rate_ppm,
                   "min_pool_per_row": self.min_pool_per_row, "sponsors": list(self.sponsors)}
        check_terms_shape("terms", payload)
        return payload

    @classmethod
    def from_payload(cls, payload: Any) -> DatasetTerms:
        """Terms from a ledger payload's `terms` object; InvalidInput names a bad field."""
        check_terms_shape("terms", payload)
        return cls(min_datasets=payload["min_datasets"],
                   model_kinds=tuple(payload["model_kinds"]),
                   max_slash_rate_ppm=payload["max_slash_rate_ppm"],
                   min_pool_per_row=payload["min_pool_per_row"],
                   sponsors=tuple(payload["sponsors"]))


DEFAULT_TERMS = DatasetTerms()


@dataclass(frozen=True)
class RoundOffer:
    """What a round asks of each dataset it includes (from its round_opened payload)."""

    sponsor: str
    model_kind: str
    datasets: int
    slash_rate_ppm: int
    pool: int
    training_rows: int


def check_round(dataset_id: str, terms: DatasetTerms, offer: RoundOffer) -> None:
    """RuleViolation (code `terms_<term>`) naming the dataset and the term the round breaks."""
    where = f"dataset {dataset_id!r}'s terms"
    if offer.datasets < terms.min_datasets:
        raise RuleViolation("terms_min_datasets", f"{where} need at least {terms.min_datasets} "
                            f"datasets in a round (min_datasets); this round has {offer.datasets}")
    if offer.model_kind not in terms.model_kinds:
        raise RuleViolation("terms_model_kinds", f"{where} allow model kinds "
                            f"{list(terms.model_kinds)} (model_kinds), not {offer.model_kind!r}")
    if offer.slash_rate_ppm > terms.max_slash_rate_ppm:
        raise RuleViolation("terms_max_slash_rate", f"{where} allow a slash rate of at most "
                            f"{terms.max_slash_rate_ppm} ppm (max_slash_rate_ppm); this round "
                            f"asks {offer.slash_rate_ppm}")
    needed = terms.min_pool_per_row * offer.training_rows
    if offer.pool < needed:
        raise RuleViolation("terms_min_pool_per_row", f"{where} need a pool of at least "
                            f"{terms.min_pool_per_row} tokens per training row (min_pool_per_row): "
                            f"{needed} for {offer.training_rows} rows; this round's pool is {offer.pool}")
    if terms.sponsors and offer.sponsor not in terms.sponsors:
        raise RuleViolation("terms_sponsors", f"{where} allow only sponsors "
                            f"{list(terms.sponsors)} (sponsors), not {offer.sponsor!r}")
