"""`node serve --data-dir node-data --certs mm-certs` and `dealer serve --work-dir
dealer-work`, as docs/operations.md starts members on their own hosts: relative folders
are made absolute where the member starts, because job specs hand them to MPC workers
and TTP processes that a ready pool started ahead (`mpcnode/worker/ready.py` refuses a
relative spec path: it would be read against the worker's own working directory).
tests/coordinator/rounds/test_round_netns.py runs a round so; this is the fast check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mpcnode.server import NodeConfig
from mpcnode.ttp_sessions import TtpSessions


def test_a_nodes_and_a_dealers_relative_folders_are_taken_from_where_they_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = NodeConfig(node_index=0, data_dir=Path("node-data"), certs_dir=Path("mm-certs"))
    assert config.data_dir == tmp_path / "node-data" and config.certs_dir == tmp_path / "mm-certs"
    sessions = TtpSessions("dealer-work", certs_dir=Path("mm-certs"))
    try:
        assert sessions.work_dir == tmp_path / "dealer-work" and sessions.work_dir.is_dir()
        assert sessions._certs_dir == tmp_path / "mm-certs"
    finally:
        sessions.close()
    os.chdir("/")                      # later reads do not move with the process's folder
    assert config.data_dir.is_absolute() and sessions.work_dir == tmp_path / "dealer-work"
