"""`provider share --rows A:B` and `--split K/N --seed S`: each provider its own rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mpcnode.share_store import ShareStore
from mutualmind.errors import InvalidInput
from provider.row_selection import select_rows
from provider.sharing import encode_fixed_point, load_sklearn, prescale, recombine
from tests.provider.test_provider_cli import mutualmind

Market = Any  # the `market` fixture in conftest.py


def _shared_row_indices(market: Market, dataset_id: str) -> set[int]:
    """Which rows of breast_cancer the nodes hold for `dataset_id` (recombined shares
    matched against the whole table encoded with the dataset's column exponents)."""
    stored = [ShareStore(n.config.data_dir).load(dataset_id) for n in market.nodes]
    held = {row.tobytes() for row in recombine([s.data for s in stored])}
    full = load_sklearn("breast_cancer")
    encoded = encode_fixed_point(prescale(full.values, stored[0].meta.exponents))
    return {i for i, row in enumerate(encoded) if row.tobytes() in held}


def test_split_gives_providers_disjoint_parts_and_rows_a_slice(market: Market, tmp_path: Path) -> None:
    nodes = [arg for address in market.node_addresses for arg in ("--node", address)]
    parts: list[set[int]] = []
    counts: list[int] = []
    for k in range(2):
        key = tmp_path / f"p{k}.key"
        assert mutualmind("provider", "keygen", "--key", str(key), "--id", f"p{k}").returncode == 0
        common = ["--key", str(key), "--coordinator", market.coordinator_address, "--certs", str(market.certs)]
        assert mutualmind("provider", "register", *common).returncode == 0
        run = mutualmind("provider", "share", *common, "--dataset-id", f"bc-{k}", "--sklearn", "breast_cancer",
                         "--split", f"{k}/3", "--seed", "7", *nodes)
        assert run.returncode == 0, run.stderr
        counts.append(json.loads(run.stdout)["rows"])
        parts.append(_shared_row_indices(market, f"bc-{k}"))
    # 569 rows in three parts: 190, 190 and 189 rows; no row in two parts
    assert [len(p) for p in parts] == counts == [190, 190]
    assert not parts[0] & parts[1]
    assert parts[0] != set(range(counts[0]))   # shuffled, not the first rows

    run = mutualmind("provider", "share", *common, "--dataset-id", "bc-rows", "--sklearn", "breast_cancer",
                     "--rows", "100:150", *nodes)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["rows"] == 50
    assert _shared_row_indices(market, "bc-rows") == set(range(100, 150))


def test_bad_row_choices_are_refused_with_one_line(tmp_path: Path) -> None:
    base = ["provider", "share", "--key", str(tmp_path / "none.key"), "--coordinator", "127.0.0.1:1",
            "--certs", str(tmp_path), "--node", "127.0.0.1:1", "--dataset-id", "d", "--sklearn", "iris",
            "--labels", "classes:3"]
    cases = {
        ("--rows", "0:1000"): "outside the table; it has rows 0:150",
        ("--split", "3/3"): "must be below N=3",
        ("--seed", "4"): "--seed only applies to --split K/N",
    }
    for flags, message in cases.items():
        run = mutualmind(*base, *flags)
        assert run.returncode == 2, (flags, run.stderr)
        assert message in run.stderr and "Traceback" not in run.stderr, (flags, run.stderr)
        assert len(run.stderr.strip().splitlines()) == 1, (flags, run.stderr)


def test_row_choices_parse_and_refuse_in_process() -> None:
    values = np.arange(20, dtype=np.float64).reshape(10, 2)
    assert select_rows(values, rows="8:")[:, 0].tolist() == [16.0, 18.0]
    assert select_rows(values, rows=":2")[:, 0].tolist() == [0.0, 2.0]
    parts = [select_rows(values, split=f"{k}/4", seed=3)[:, 0].tolist() for k in range(4)]
    assert sorted(sum(parts, [])) == values[:, 0].tolist() and [len(p) for p in parts] == [3, 3, 2, 2]
    assert parts != [select_rows(values, split=f"{k}/4", seed=4)[:, 0].tolist() for k in range(4)]
    for kwargs, message in (({"rows": "5:2"}, "is empty"), ({"rows": "a-b"}, "is not A:B"),
                            ({"split": "0/1"}, "N must be 2 or more"), ({"split": "half"}, "is not K/N"),
                            ({"split": "0/11"}, "only 10 rows for 11 parts"),
                            ({"split": "0/2", "seed": -1}, "must be 0 or more")):
        with pytest.raises(InvalidInput, match=message):
            select_rows(values, **kwargs)  # type: ignore[arg-type]
