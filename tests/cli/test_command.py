"""The `mutualmind` command itself, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version


def test_version_prints_the_installed_version() -> None:
    run = subprocess.run([sys.executable, "-m", "mutualmind", "--version"], check=False,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"mutualmind {version('mutualmind')}"


def test_every_role_command_has_help() -> None:
    from mutualmind.cli import COMMANDS

    for command in COMMANDS:
        run = subprocess.run([sys.executable, "-m", "mutualmind", command, "--help"], check=False,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, (command, run.stderr)
        assert f"mutualmind {command}" in run.stdout
