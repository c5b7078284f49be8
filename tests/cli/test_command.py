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


def test_every_option_and_argument_of_every_command_has_help() -> None:
    """Each option and positional of every `mutualmind` command says what it is for
    (options hidden on purpose, help=SUPPRESS, are left out)."""
    import argparse

    from mutualmind.cli import build_parser

    def walk(parser: argparse.ArgumentParser, path: str) -> list[str]:
        bare: list[str] = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    bare += walk(sub, f"{path} {name}")
            elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)) and not action.help:
                bare.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
        return bare

    assert walk(build_parser(), "mutualmind") == [], "options without help text"


def test_round_open_help_lists_every_model_spec_key_with_its_default() -> None:
    from dataclasses import asdict

    from mutualmind.vocabulary.model_spec import ModelSpec

    for command in (["admin", "round", "open"], ["provider", "open-round"]):
        run = subprocess.run([sys.executable, "-m", "mutualmind", *command, "--help"], check=False,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        text = "".join(run.stdout.split())       # argparse wraps lines anywhere
        for key, default in asdict(ModelSpec()).items():
            assert f"{key}={default}(" in text, (command, key)
        assert "logistic|linear|softmax|mlp" in text and "loo|banzhaf" in text
