"""`mutualmind`: one console command, one module per role's subcommands.

Each entry of COMMANDS names a module with `register(subparsers)`, which adds its
sub-parser and sets `func(args) -> int`. Those modules keep heavy imports (torch,
CrypTen, grpc) inside their handlers so that `mutualmind ledger verify` starts fast.
A `MutualMindError` becomes one line on stderr and its exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from mutualmind.errors import EXIT_CODES, MutualMindError

# command name -> module that registers it (only commands that work are listed)
COMMANDS: dict[str, str] = {
    "ledger": "ledger.cli",
    "cluster": "mutualmind.cluster.cli",
    "node": "mpcnode.cli",
    "provider": "provider.cli",
    "owner": "provider.owner_cli",
    "modeler": "provider.modeler_cli",
    "user": "provider.user_cli",
    "coordinator": "coordinator.cli",
    "demo": "mutualmind.demo.cli",
    "admin": "coordinator.admin_cli.cli",
    "dealer": "mpcnode.dealer",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mutualmind",
        description="MutualMind: a private machine-learning data marketplace.",
    )
    parser.add_argument("--version", action="version", version=f"mutualmind {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMANDS.values():
        importlib.import_module(module_name).register(sub)
    return parser


def _version() -> str:
    """The installed distribution's version (what `pip show mutualmind` says)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mutualmind")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()       # a closed pipe shows here, not in the interpreter's exit
        return code
    except MutualMindError as err:
        print(f"mutualmind: error: {err.message}", file=sys.stderr)
        return EXIT_CODES[err.code]
    except KeyboardInterrupt:
        print("mutualmind: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader stopped (`ledger show --json | head`): stop quietly, as `cat` does;
        # stdout goes to /dev/null so flushing it at exit raises nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
