"""The benchmark tasks: bundled scikit-learn sets and binary tasks derived from them.

Every task has one public split (80/20, stratified, random_state 0) shared by the MPC
run, the plaintext reference and scikit-learn. Columns that are constant on the
training split are dropped (a public schema decision: they carry no information).
"""

from __future__ import annotations

import numpy as np

# name: (loader name, how labels are derived, task)
TASKS = {
    "breast_cancer": ("breast_cancer", "as_is", "binary"),
    "wine_0_vs_rest": ("wine", "class0", "binary"),
    "digits_low_vs_high": ("digits", "below5", "binary"),
    "iris": ("iris", "as_is", "multiclass"),
    "wine": ("wine", "as_is", "multiclass"),
    "digits": ("digits", "as_is", "multiclass"),
    "diabetes": ("diabetes", "as_is", "regression"),
}


def load_table(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The whole table of a task (features, labels derived as the task says), unsplit."""
    from sklearn import datasets

    if name not in TASKS:
        raise SystemExit(f"unknown dataset {name!r}; choose one of {', '.join(sorted(TASKS))}")
    loader, derive, _ = TASKS[name]
    x, y = getattr(datasets, f"load_{loader}")(return_X_y=True)
    y = np.asarray(y, dtype=float)
    if derive == "class0":
        y = (y == 0).astype(float)
    elif derive == "below5":
        y = (y >= 5).astype(float)
    return x, y


def load_task(name: str, rows: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str, int]:
    """(train_x, train_y, validation_x, validation_y, task, classes). `rows` > the set's
    size repeats rows with 1 % multiplicative jitter (public seed) for scaling runs."""
    from sklearn.model_selection import train_test_split

    x, y = load_table(name)
    task = TASKS[name][2]
    if rows and rows != len(x):
        rng = np.random.default_rng(0)
        index = rng.integers(0, len(x), size=rows)
        x = x[index] * (1 + 0.01 * rng.standard_normal(x[index].shape))
        y = y[index]
    stratify = y if task != "regression" else None
    tx, vx, ty, vy = train_test_split(x, y, test_size=0.2, random_state=0, stratify=stratify)
    keep = tx.std(0) > 0
    classes = int(y.max()) + 1 if task == "multiclass" else 2
    return tx[:, keep], ty, vx[:, keep], vy, task, classes


def sklearn_accuracy(task: str, tx: np.ndarray, ty: np.ndarray, vx: np.ndarray, vy: np.ndarray) -> float:
    """scikit-learn's plaintext LogisticRegression (standardised, defaults) on the split;
    for regression, LinearRegression's MSE in units of the training target variance."""
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(tx)
    if task == "regression":
        model = LinearRegression().fit(scaler.transform(tx), ty)
        return float(((model.predict(scaler.transform(vx)) - vy) ** 2).mean() / ty.var())
    model = LogisticRegression(max_iter=10000).fit(scaler.transform(tx), ty)
    return float(model.score(scaler.transform(vx), vy))
