"""The demo's cast: a real table split over providers, one noisy, one duplicating.

Plain data preparation on the demo's (trusted) machine: it plays every provider and the
sponsor at once. Each provider's table is later shared on "its own machine" exactly as
a real provider does (`provider.sharing`), so nothing here reaches a node in plaintext.
The split is seeded for reproducible demos — a seed for *which rows go where*, never
for anything secret (shares use os.urandom).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.dataset import TableSchema
from mutualmind.vocabulary.payloads import MIN_DATASETS_FLOOR
from provider.sharing import Table, load_csv, load_sklearn

CLASSIFICATION_DATASETS = ("breast_cancer", "wine", "digits", "iris")
ROLES = ("honest", "noisy", "duplicate")


@dataclass(frozen=True)
class ProviderPart:
    """One provider's rows and its role in the story."""

    name: str
    role: str
    table: Table = field(repr=False)

    @property
    def rows(self) -> int:
        return self.table.rows


@dataclass(frozen=True)
class Scenario:
    schema: TableSchema
    providers: list[ProviderPart]
    validation: Table = field(repr=False)
    classes: int

    @property
    def training(self) -> Table:
        """Every provider's rows together (what the full model trains on)."""
        return Table(np.vstack([p.table.values for p in self.providers]), self.schema)


def load_table(dataset: str | None, csv_path: str | None, label: str | None) -> Table:
    if csv_path:
        if not label:
            raise InvalidInput("--csv needs --label COLUMN (the column to predict)")
        return load_csv(csv_path, label_column=label)
    name = dataset or "breast_cancer"
    if name not in CLASSIFICATION_DATASETS:
        raise InvalidInput(f"--dataset must be a bundled classification set: "
                           f"{', '.join(CLASSIFICATION_DATASETS)}")
    return load_sklearn(name)


def build_scenario(table: Table, *, providers: int = 5, validation_fraction: float = 0.2,
                   flip_fraction: float = 0.4, seed: int = 7, noise: str = "flip") -> Scenario:
    """Split rows: a validation set for the sponsor, the rest over `providers` providers.

    Provider 1 (when there are at least 3) is "noisy": with `noise="flip"` it flips
    `flip_fraction` of its labels to another class at random; with `noise="missed"` it
    records `flip_fraction` of its cases of any class but 0 as class 0 (a source that
    misses most positive cases, e.g. undiagnosed ones: a bias, not just noise);
    the last provider re-submits a copy of provider 0's rows ("duplicate"); the rest are
    honest. Labels must be class indices 0..k-1.
    """
    if noise not in ("flip", "missed"):
        raise InvalidInput(f"noise must be 'flip' or 'missed', got {noise!r}")
    if providers < MIN_DATASETS_FLOOR:
        raise InvalidInput(f"--providers must be at least {MIN_DATASETS_FLOOR}: every dataset's "
                           f"terms ask for rounds of {MIN_DATASETS_FLOOR} datasets or more")
    labels = table.values[:, -1]
    if not np.all(labels == np.round(labels)) or labels.min() < 0:
        raise InvalidInput("the label column must hold class indices 0, 1, ...")
    classes = int(labels.max()) + 1
    rng = np.random.default_rng(seed)   # row assignment only; nothing secret
    order = rng.permutation(table.rows)
    n_val = max(classes * 2, int(round(table.rows * validation_fraction)))
    validation = Table(table.values[order[:n_val]], table.schema)
    rest = order[n_val:]
    distinct = providers - 1 if providers >= 3 else providers  # the duplicate has no own rows
    if len(rest) < distinct * 4:
        raise InvalidInput(f"{table.rows} rows are too few for {providers} providers")
    chunks = np.array_split(rest, distinct)
    parts: list[ProviderPart] = []
    for i, idx in enumerate(chunks):
        values = table.values[idx].copy()
        role = "honest"
        if i == 1 and providers >= 3:
            role = "noisy"
            flip = rng.random(len(values)) < flip_fraction
            if noise == "missed":
                values[flip & (values[:, -1] > 0), -1] = 0
            else:
                values[flip, -1] = _other_class(values[flip, -1], classes, rng)
        parts.append(ProviderPart(name=f"provider-{i}", role=role, table=Table(values, table.schema)))
    if providers >= 3:
        parts.append(ProviderPart(name=f"provider-{providers - 1}", role="duplicate",
                                  table=Table(parts[0].table.values.copy(), table.schema)))
    return Scenario(schema=table.schema, providers=parts, validation=validation, classes=classes)


def _other_class(labels: np.ndarray, classes: int, rng: np.random.Generator) -> np.ndarray:
    """Each label replaced by a different class (for binary: flipped)."""
    shift = rng.integers(1, classes, size=len(labels)) if classes > 2 else np.ones(len(labels))
    return (labels + shift) % classes


def plaintext_metrics(scenario: Scenario) -> dict[str, float]:
    """scikit-learn's LogisticRegression on the same rows and split: log-loss and accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train = scenario.training.values
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(train[:, :-1], train[:, -1])
    val = scenario.validation.values
    from sklearn.metrics import log_loss

    probabilities = model.predict_proba(val[:, :-1])
    return {"log_loss": float(log_loss(val[:, -1], probabilities, labels=model.classes_)),
            "accuracy": float(model.score(val[:, :-1], val[:, -1]))}
