"""CrypTen's process globals, answered per party (`party_context`).

Several parties run as threads of one process (`plane_memory`): each must see its own
communicator, dealer client, tuple provider, seeds and configuration overrides, and
CrypTen's own globals must be back once the run is over, so nothing leaks into the
next test in the same process.
"""

from __future__ import annotations

import threading

import pytest

from mpcnode.worker import party_context
from mpcnode.worker.crypten_config_view import view_of
from mpcnode.worker.plane_memory import run_parties
from mutualmind.crypten_compat import crypten


def test_each_thread_sees_its_own_party_and_its_own_overrides() -> None:
    shared = view_of(crypten.cfg.config)
    base = shared.functions.exp_iterations
    parties = [party_context.Party(communicator=f"comm{r}", provider=f"provider{r}") for r in range(2)]
    inside, checked = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def overriding() -> None:
        with party_context.bound(parties[0]), crypten.cfg.temp_override({"functions.exp_iterations": base + 5}):
            seen["own"] = crypten.cfg.functions.exp_iterations
            inside.set()
            checked.wait(10)

    def reading() -> None:
        with party_context.bound(parties[1]):
            inside.wait(10)
            seen["other"] = crypten.cfg.functions.exp_iterations
            seen["comm"] = crypten.communicator.get()
            seen["provider"] = crypten.mpc.get_default_provider()
            checked.set()

    party_context.install(per_thread_config=shared)
    try:
        threads = [threading.Thread(target=overriding), threading.Thread(target=reading)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        with pytest.raises(RuntimeError, match="no MPC party is bound"):
            crypten.communicator.get()      # this thread runs as no party
    finally:
        party_context.uninstall()
    assert seen == {"own": base + 5, "other": base, "comm": "comm1", "provider": "provider1"}


def test_a_run_leaves_cryptens_globals_as_it_found_them() -> None:
    before = (crypten.communicator.get, crypten.cfg.config, crypten.cfg.temp_override,
              crypten.mpc.get_default_provider, {k: type(v) for k, v in crypten.generators.items()})
    assert run_parties(2, lambda rank: crypten.communicator.get().get_rank()) == [0, 1]
    after = (crypten.communicator.get, crypten.cfg.config, crypten.cfg.temp_override,
             crypten.mpc.get_default_provider, {k: type(v) for k, v in crypten.generators.items()})
    assert after == before
