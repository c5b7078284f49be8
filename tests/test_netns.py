"""The namespace harness (tests/netns.py) itself: members reach each other and the host
through the bridge only while their cable is in, everything goes at the end, and what a
crashed run left behind is removed by the next one (but not another live run's)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.netns import network, remove_leftovers, unavailable_reason

REPO = Path(__file__).resolve().parents[1]
CONNECT = ("import socket, sys\n"
           "try:\n"
           "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()\n"
           "except OSError as err:\n"
           "    sys.exit(f'{type(err).__name__}')\n")


@pytest.fixture(autouse=True)
def _namespaces_possible() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


def _names() -> str:
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    spaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return links + spaces


def test_members_meet_over_the_bridge_and_a_cut_cable_isolates_one() -> None:
    with network(["a", "b"]) as net:
        server = net.popen("a", [sys.executable, "-c",
                                 "import socket; s = socket.create_server(('0.0.0.0', 7000)); "
                                 "print('up', flush=True)\nwhile True: s.accept()[0].close()"],
                           stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None and server.stdout.readline() == "up\n"
            reach = [sys.executable, "-c", CONNECT, net.address("a"), "7000"]
            assert net.run_in("b", reach, capture_output=True, text=True).returncode == 0
            assert subprocess.run(reach, capture_output=True).returncode == 0   # from the host
            assert net.run_in("b", [sys.executable, "-c", CONNECT, "127.0.0.1", "7000"],
                              capture_output=True).returncode != 0   # b's loopback is b's own
            net.link_down("a")
            cut = net.run_in("b", reach, capture_output=True, text=True)
            assert cut.returncode != 0, "a's cable is out"
            net.link_up("a")
            assert net.run_in("b", reach, capture_output=True).returncode == 0
        finally:
            server.kill()
            server.wait()
        run = net.run
    assert f"{run}-" not in _names()     # namespaces, veths and bridge all gone


def test_a_crashed_runs_leftovers_are_removed_and_a_live_runs_are_not() -> None:
    crashed = subprocess.run(
        [sys.executable, "-c", "import os\nfrom tests.netns import network\n"
         "with network(['a']) as net:\n    print(net.run, flush=True)\n    os.kill(os.getpid(), 9)"],
        cwd=REPO, capture_output=True, text=True)
    run = crashed.stdout.strip()
    assert crashed.returncode == -9 and run and f"{run}-a" in _names()
    with network(["live"]) as net:       # starting a run removes the dead run's names
        assert f"{run}-" not in _names()
        assert f"{net.run}-live" in _names()
        assert remove_leftovers() == []    # this run's own process is alive: kept
        assert f"{net.run}-live" in _names()
