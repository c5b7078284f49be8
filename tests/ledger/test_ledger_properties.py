"""Property tests: random operation sequences keep supply, never go negative, replay equals live."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ledger import Ledger, verify_ledger
from ledger.workload import Market
from mutualmind.errors import MutualMindError
from mutualmind.vocabulary.signing_keys import generate_signing_key

PROVIDERS = ("p0", "p1", "p2")
# mostly affordable amounts, some refused (zero, negative) and some too large
amounts = st.integers(0, 99).flatmap(
    lambda r: st.integers(-2, 0) if r < 8 else st.integers(1, 300) if r < 85 else st.integers(300, 20_000)
)
who = st.sampled_from(range(len(PROVIDERS)))

money = st.one_of(
    st.tuples(st.just("mint"), who, amounts),
    st.tuples(st.just("transfer"), who, who, amounts),
    st.tuples(st.just("stake"), who, amounts),
    st.tuples(st.just("unstake"), who, amounts),
)
rounds = st.one_of(
    st.tuples(st.just("open"), who, amounts, st.lists(who, min_size=2, max_size=3, unique=True)),
    st.tuples(st.just("result"), st.lists(st.integers(0, 1_000_000), min_size=4, max_size=4)),
    st.tuples(st.just("slash"), who, amounts),
    st.tuples(st.just("payout"), who, amounts),
    st.tuples(st.just("close")),
    st.tuples(st.just("abort")),
)
operations = st.one_of(money, money, rounds)


class Scenario:
    """Turns abstract operations into signed requests against one live ledger."""

    def __init__(self, path: Path) -> None:
        self.market = Market()
        self.ledger = Ledger.create(path, generate_signing_key(), params={})
        setup = [self.market.register_node(0), self.market.register_node(1)]
        for name in PROVIDERS:
            setup.append(self.market.register_provider(name))
        for i, name in enumerate(PROVIDERS):
            setup.append(self.market.register_dataset(f"ds-{i}", name))
        setup.append(self.market.register_dataset("val", "p0", "validation"))
        for i, name in enumerate(PROVIDERS):
            setup += [self.market.mint(name, 5000), self.market.stake(name, f"ds-{i}", 100)]
        self.ledger.append_many(setup)

    def request(self, op: tuple[Any, ...]) -> tuple[str, dict[str, Any], bytes | None]:
        m, name = self.market, lambda i: PROVIDERS[i]
        current = next(reversed(self.ledger.state.rounds), "r0")  # the latest opened round
        kind = op[0]
        if kind == "mint":
            return "mint", {"to": name(op[1]), "amount": op[2], "memo": ""}, None
        if kind == "transfer":
            payload = {"from": name(op[1]), "to": name(op[2]), "amount": op[3], "nonce": m.nonce()}
            return m.signed("transfer", payload, name(op[1]))
        if kind in ("stake", "unstake"):
            payload = {"provider_id": name(op[1]), "dataset_id": f"ds-{op[1]}", "amount": op[2], "nonce": m.nonce()}
            return m.signed(kind, payload, name(op[1]))
        if kind == "open":
            return m.open_round(f"r{len(self.ledger.state.rounds) + 1}", name(op[1]), op[2], "val", [f"ds-{i}" for i in op[3]])
        if kind == "result":
            record = self.ledger.state.rounds.get(current)
            n = len(record.datasets) if record else 1
            return m.round_result(current, op[1][: n + 1])
        if kind == "slash":
            return "slash", {"round_id": current, "dataset_id": f"ds-{op[1]}", "provider_id": name(op[1]), "amount": op[2]}, None
        if kind == "payout":
            return "payout", {"round_id": current, "to": name(op[1]), "amount": op[2]}, None
        if kind == "close":
            return "round_closed", {"round_id": current}, None
        return "round_aborted", {"round_id": current, "reason": "test"}, None


def _check_invariants(ledger: Ledger) -> None:
    state = ledger.state
    totals = state.recount_supply()
    assert totals["balances"] + totals["stakes"] + totals["pools"] == totals["minted"]
    assert all(v >= 0 for v in state.balances.values())
    assert all(v >= 0 for v in state.stakes.values())
    assert all(v >= 0 for v in state.pools.values())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(operations, operations, st.lists(operations, min_size=2, max_size=3)), min_size=12, max_size=40))
def test_random_operations_keep_the_invariants(steps: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ledger.db"
        scenario = Scenario(path)
        ledger = scenario.ledger
        accepted = 0
        try:
            for step in steps:
                batch = step if isinstance(step, list) else [step]
                size_before = ledger.size
                try:
                    ledger.append_many([scenario.request(op) for op in batch])
                    accepted += len(batch)
                except MutualMindError:
                    assert ledger.size == size_before  # a refused batch leaves nothing behind
                _check_invariants(ledger)
            live = ledger.state
            replayed = Ledger.open(path)
            try:
                assert replayed.state.balances == live.balances
                assert replayed.state.stakes == live.stakes
                assert replayed.state.pools == live.pools
                assert replayed.state.rounds == live.rounds
                assert replayed.state.used_nonces == live.used_nonces
                assert replayed.state.totals == live.totals
                assert replayed.root_hash() == ledger.root_hash()
            finally:
                replayed.close()
        finally:
            ledger.close()
        event(f"accepted {min(accepted, 20) // 5 * 5}+ operations")
        report = verify_ledger(path)
        assert report.ok, report.error
        assert report.entries == ledger.size
