"""Every option of every `mutualmind provider` subcommand says what it is for."""

from __future__ import annotations

import argparse

from mutualmind.cli import build_parser
from tests.provider.test_provider_cli import mutualmind


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_provider_option_has_help() -> None:
    provider = _subparsers(build_parser())["provider"]
    commands = _subparsers(provider)
    assert {"keygen", "register", "share", "resume", "stake", "balance", "collect-model",
            "terms", "unstake", "abort-round"} <= set(commands)
    bare = [f"provider {name} {'/'.join(action.option_strings)}"
            for name, parser in sorted(commands.items())
            for action in parser._actions
            if action.option_strings and not isinstance(action, argparse._HelpAction)
            and (not action.help or action.help == argparse.SUPPRESS)]
    assert bare == [], f"options without help text: {bare}"


def test_share_help_shows_the_row_choices() -> None:
    run = mutualmind("provider", "share", "--help")
    assert run.returncode == 0
    text = " ".join(run.stdout.split())
    assert "--split K/N" in text and "disjoint random parts" in text and "--rows A:B" in text
    assert "--dataset-id DATASET_ID" in text and "the dataset's id" in text
