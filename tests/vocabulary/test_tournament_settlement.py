"""The two-level tournament settlement: known answers and properties over random tournaments."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.tournament_settlement import (
    DatasetPart,
    ModelPart,
    TournamentSettlement,
    settle_tournament,
    settlement_entries,
)

TERMS = {"slash_rate_ppm": 100_000, "epsilon_micro": 1000, "higher_is_better": True}


def _model(mid: str, contribution: int, datasets: list[tuple[str, int]], stake: int = 1000,
           kept: int = 2000, dataset_stake: int = 500) -> ModelPart:
    return ModelPart(mid, f"modeler-{mid}", stake, kept, contribution,
                     tuple(DatasetPart(d, f"owner-{d}", dataset_stake, c) for d, c in datasets))


GOOD = _model("good", 30_000, [("a", 20_000), ("b", 10_000), ("n", -5_000)])
MLP = _model("mlp", 10_000, [("a", 4_000), ("b", 4_000)])
NOISY = _model("noisy", -20_000, [("a", 1_000), ("n", -9_000)], stake=2000)


def _settle(models: list[ModelPart], metric: int = 800_000, threshold: int = 700_000,
            pool: int = 10_000) -> TournamentSettlement:
    return settle_tournament(models, pool=pool, metamodel_metric_micro=metric,
                             threshold_micro=threshold, **TERMS)  # type: ignore[arg-type]


def test_known_answer_with_the_bounty_paid() -> None:
    s = _settle([GOOD, MLP, NOISY])
    assert s.bounty_paid and s.refund == 0
    # noisy: S = 2000 * 10% = 200; it keeps 20% (40) and passes 160 to the data that hurt it
    assert s.model_slashes == {"noisy": 200}
    assert s.dataset_slashes == {"noisy": {"n": 50}}  # capped at 500 * 10%
    # level 1: 10_000 + 200 over contributions 30_000 : 10_000
    assert s.rewards == {"good": 7650, "mlp": 2550}
    # level 2: good keeps 20% of 7650 = 1530; 6120 over a : b = 2 : 1 (n hurt: nothing)
    assert s.kept == {"good": 1530, "mlp": 510}
    assert s.dataset_payouts == {"good": {"a": 4080, "b": 2040}, "mlp": {"a": 1020, "b": 1020}}
    # noisy gets back its stake less its own part of the slash (200 - 50)
    assert s.stake_returned == {"good": 1000, "mlp": 1000, "noisy": 1850}


def test_threshold_not_met_refunds_the_pool_and_still_slashes() -> None:
    s = _settle([GOOD, MLP, NOISY], metric=600_000)
    assert not s.bounty_paid
    assert s.refund == 10_000
    assert s.model_slashes == {"noisy": 200}
    assert s.rewards == {"good": 150, "mlp": 50}  # only the slashed stake is split


def test_lower_is_better_metrics_beat_the_threshold_from_below() -> None:
    below = settle_tournament([GOOD], pool=100, metamodel_metric_micro=300_000, threshold_micro=400_000,
                              slash_rate_ppm=0, epsilon_micro=0, higher_is_better=False)
    above = settle_tournament([GOOD], pool=100, metamodel_metric_micro=500_000, threshold_micro=400_000,
                              slash_rate_ppm=0, epsilon_micro=0, higher_is_better=False)
    assert below.bounty_paid and below.rewards == {"good": 100}
    assert not above.bounty_paid and above.refund == 100


def test_no_helpful_model_sends_the_slashes_to_the_sponsor() -> None:
    s = _settle([NOISY])
    assert s.rewards == {} and s.refund == 10_000 + 200


def test_a_dataset_cap_is_shared_by_the_models_that_chose_it() -> None:
    first = _model("first", -10_000, [("n", -2_000)], stake=10_000, kept=0)
    second = _model("second", -10_000, [("n", -2_000)], stake=10_000, kept=0)
    s = _settle([first, second])
    # each passes 1000; n's cap is 500 * 10% = 50 in all, used by the first model
    assert s.dataset_slashes == {"first": {"n": 50}}
    assert s.stake_returned == {"first": 9050, "second": 9000}


def test_entries_come_in_the_order_the_ledger_checks() -> None:
    models = [GOOD, MLP, NOISY]
    kinds = [kind for kind, _ in settlement_entries("t1", "sponsor", models, _settle(models))]
    assert kinds == ["model_dataset_slashed", "model_slashed", "model_rewarded", "model_payout",
                     "model_payout", "model_payout", "model_rewarded", "model_payout", "model_payout",
                     "model_payout", "model_stake_returned", "model_stake_returned",
                     "model_stake_returned", "tournament_closed"]


@pytest.mark.parametrize("changes, fragment", [
    ({"pool": -1}, "pool"), ({"slash_rate_ppm": 1_000_001}, "slash_rate"), ({"epsilon_micro": -1}, "epsilon"),
])
def test_bad_terms_are_refused(changes: dict[str, int], fragment: str) -> None:
    args = {"pool": 10, "metamodel_metric_micro": 0, "threshold_micro": 0, "slash_rate_ppm": 0,
            "epsilon_micro": 0, "higher_is_better": True, **changes}
    with pytest.raises(InvalidInput, match=fragment):
        settle_tournament([GOOD], **args)  # type: ignore[arg-type]


def test_a_copy_earns_nothing_and_shares_its_groups_slash() -> None:
    copy = ModelPart("copy", "modeler-copy", 1000, 2000, 29_000, GOOD.datasets, copy_of="good")
    s = _settle([GOOD, MLP, copy])
    assert set(s.rewards) == {"good", "mlp"} and s.rewards == _settle([GOOD, MLP]).rewards
    assert s.stake_returned["copy"] == 1000
    # the group hurt: the copy is slashed with it, whatever number it was given
    bad_copy = ModelPart("copy", "modeler-copy", 1000, 2000, 5_000, NOISY.datasets, copy_of="noisy")
    s = _settle([GOOD, NOISY, bad_copy])
    assert s.model_slashes == {"noisy": 200, "copy": 100} and "copy" not in s.rewards
    with pytest.raises(InvalidInput, match="not an earlier original"):
        _settle([copy, GOOD])


# ---- properties over random tournaments ---------------------------------------------

contribution = st.integers(min_value=-50_000, max_value=50_000)


@st.composite
def tournaments(draw: st.DrawFn) -> tuple[list[ModelPart], dict[str, int], dict[str, object]]:
    names = [f"d{i}" for i in range(draw(st.integers(1, 6)))]
    dataset_stakes = {d: draw(st.integers(0, 10_000)) for d in names}
    models: list[ModelPart] = []
    for i in range(draw(st.integers(0, 6))):
        chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True))
        originals = [m.model_id for m in models if not m.copy_of]
        copy_of = draw(st.sampled_from(["", *originals]))
        models.append(ModelPart(
            f"m{i}", f"modeler-{i % 3}", draw(st.integers(0, 100_000)), draw(st.integers(0, 10_000)),
            draw(contribution),
            tuple(DatasetPart(d, f"owner-{d}", dataset_stakes[d], draw(contribution)) for d in chosen),
            copy_of=copy_of))
    terms: dict[str, object] = {"pool": draw(st.integers(0, 10**9)), "metamodel_metric_micro": draw(st.integers(0, 10**6)),
             "threshold_micro": draw(st.integers(0, 10**6)), "slash_rate_ppm": draw(st.integers(0, 10**6)),
             "epsilon_micro": draw(st.integers(0, 20_000)), "higher_is_better": draw(st.booleans())}
    return models, dataset_stakes, terms


def _replay(models: list[ModelPart], dataset_stakes: dict[str, int], pool: int,
            entries: list[tuple[str, dict[str, object]]]) -> tuple[Counter[str], dict[str, int]]:
    """Apply the entries to plain accounts; every account must stay >= 0."""
    accounts: Counter[str] = Counter({"pool": pool})
    accounts.update({f"stake/{m.model_id}": m.stake for m in models})
    accounts.update({f"dstake/{d}": s for d, s in dataset_stakes.items()})
    moves = {
        "model_dataset_slashed": lambda p: (f"dstake/{p['dataset_id']}", "pool"),
        "model_slashed": lambda p: (f"stake/{p['model_id']}", "pool"),
        "tournament_refund": lambda p: ("pool", f"bal/{p['sponsor']}"),
        "model_rewarded": lambda p: ("pool", f"reward/{p['model_id']}"),
        "model_payout": lambda p: (f"reward/{p['model_id']}", f"bal/{p['to']}"),
        "model_stake_returned": lambda p: (f"stake/{p['model_id']}", f"bal/{p['modeler']}"),
    }
    for kind, p in entries:
        if kind == "tournament_closed":
            continue
        source, sink = moves[kind](p)
        assert isinstance(p["amount"], int) and p["amount"] > 0
        accounts[source] -= p["amount"]
        accounts[sink] += p["amount"]
        assert accounts[source] >= 0, f"{kind} overdraws {source}"
    return accounts, dataset_stakes


@settings(max_examples=150, deadline=None)
@given(tournaments())
def test_random_tournaments_conserve_supply_and_follow_their_terms(drawn) -> None:  # type: ignore[no-untyped-def]
    models, dataset_stakes, terms = drawn
    s = settle_tournament(models, **terms)  # type: ignore[arg-type]
    assert s == settle_tournament(models, **terms)  # type: ignore[arg-type]  # deterministic
    entries = settlement_entries("t", "sponsor", models, s)
    assert entries == settlement_entries("t", "sponsor", models, s)
    pool = terms["pool"]
    accounts, _ = _replay(models, dataset_stakes, pool, entries)  # type: ignore[arg-type]
    before = pool + sum(m.stake for m in models) + sum(dataset_stakes.values())
    assert sum(accounts.values()) == before  # conservation
    # every token leaves the tournament: pool, model stakes and rewards end at 0
    assert accounts["pool"] == 0
    assert all(v == 0 for k, v in accounts.items() if k.startswith(("stake/", "reward/")))
    # the pool is refunded when the threshold is not met; with no helpful model, all of it
    helpful = [m for m in models if not m.copy_of and m.contribution_micro > terms["epsilon_micro"]]
    assert not any(m.copy_of and m.model_id in s.rewards for m in models)  # a copy earns nothing
    slashed = sum(s.model_slashes.values())
    assert s.refund == ((0 if s.bounty_paid else pool) if helpful else pool + slashed)
    # slashes are exactly as the terms say, bounty or not
    rate, eps = terms["slash_rate_ppm"], terms["epsilon_micro"]
    group = {m.model_id: m.contribution_micro for m in models if not m.copy_of}
    expected = {m.model_id: m.stake * rate // 1_000_000 for m in models
                if group[m.copy_of or m.model_id] < -eps and m.stake * rate // 1_000_000 > 0}
    assert s.model_slashes == expected
    # no dataset gives more than the tournament's rate of its stake, in all models together
    given_by: Counter[str] = Counter()
    for parts in s.dataset_slashes.values():
        given_by.update(parts)
    assert all(given_by[d] <= dataset_stakes[d] * rate // 1_000_000 for d in given_by)
    # only helpful models are rewarded, and each reward is passed on in full
    assert set(s.rewards) <= {m.model_id for m in helpful}
    for mid, reward in s.rewards.items():
        assert s.kept.get(mid, 0) + sum(s.dataset_payouts.get(mid, {}).values()) == reward
