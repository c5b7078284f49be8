"""`mutualmind ledger verify|show|proof|head|check-proof|export`: the ledger from the shell.

`verify` exits 0 with a summary when everything holds and 1 naming the first bad entry
and what is wrong with it. `show`, `proof` and `head` only read the file (no key needed,
nothing written): `head` prints the latest checkpoint the coordinator signed, `proof`
proves an entry against the latest checkpoint that covers it. `check-proof` needs no
database at all: a proof file and the coordinator's verifier key (and, with `--quorum K`,
the nodes' witness keys: the head must carry K of their cosignatures). `export` writes a
consistent single-file copy, safe while the coordinator runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from mutualmind.errors import InvalidInput, MutualMindError, NotFound

DATA_DIR_ENV = "MUTUALMIND_DATA_DIR"
CLUSTER_LEDGER = Path("coordinator") / "ledger.db"  # where `cluster up` keeps the ledger
DB_HELP = f"ledger SQLite file (default: ${DATA_DIR_ENV}/{CLUSTER_LEDGER} when that is set)"


def resolve_db(db: Path | None) -> Path:
    """The ledger file to read: --db, else the local cluster's under $MUTUALMIND_DATA_DIR."""
    if db is not None:
        return db
    data_dir = os.environ.get(DATA_DIR_ENV)
    if not data_dir:
        raise InvalidInput(f"give --db LEDGER_FILE (or set {DATA_DIR_ENV} to a local cluster's data dir)")
    return Path(data_dir) / CLUSTER_LEDGER


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("ledger", help="verify and inspect a MutualMind ledger")
    sub = parser.add_subparsers(dest="ledger_command", metavar="SUBCOMMAND", required=True)

    verify = sub.add_parser("verify", help="check every hash, signature, link and rule")
    verify.add_argument("--db", type=Path, default=None, help=DB_HELP)
    verify.add_argument("--vkey", help="trusted verifier key (name+keyid+base64); default: genesis key")
    verify.add_argument("--checkpoint", type=Path, action="append", default=[],
                        help="a signed tree head saved earlier; the ledger must still match it")
    verify.add_argument("--workers", type=int, default=None, help="processes for signature checks")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(func=_verify)

    show = sub.add_parser("show", help="recent entries")
    show.add_argument("--db", type=Path, default=None, help=DB_HELP)
    show.add_argument("--kind", help="only entries of this kind")
    show.add_argument("--party", help="only entries concerning this provider id")
    show.add_argument("--limit", type=int, default=20, help="how many (the most recent)")
    show.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    show.set_defaults(func=_show)

    proof = sub.add_parser("proof", help="inclusion proof of one entry (or consistency proof), as JSON")
    proof.add_argument("--db", type=Path, default=None, help=DB_HELP)
    target = proof.add_mutually_exclusive_group(required=True)
    target.add_argument("--index", type=int, help="entry to prove included")
    target.add_argument("--since", type=Path, help="a saved tree head: prove the log only grew since")
    proof.add_argument("--out", type=Path, help="write to this file instead of stdout")
    proof.set_defaults(func=_proof)

    head = sub.add_parser("head", help="the latest signed tree head (tlog-checkpoint)")
    head.add_argument("--db", type=Path, default=None, help=DB_HELP)
    head.add_argument("--vkey-only", action="store_true", help="print the verifier key instead")
    head.set_defaults(func=_head)

    export = sub.add_parser("export", help="a consistent single-file copy (safe while the coordinator runs)")
    export.add_argument("--db", type=Path, default=None, help=DB_HELP)
    export.add_argument("--out", required=True, type=Path, help="file to write (refused if it exists)")
    export.add_argument("--force", action="store_true", help="replace --out if it exists")
    export.set_defaults(func=_export)

    check = sub.add_parser("check-proof", help="check a proof file offline")
    check.add_argument("proof_file", type=Path,
                       help="a proof file from `ledger proof` or `provider proof --out`")
    check.add_argument("--vkey", help="trusted verifier key; default: the one in the file (weaker)")
    check.add_argument("--quorum", type=int, default=0, metavar="K",
                       help="accept the checkpoint only with valid cosignatures by at least K "
                            "distinct known witnesses (the nodes); default 0: not required")
    check.add_argument("--witness", action="append", default=[], metavar="VKEY",
                       help="a trusted witness key name+keyid+base64 (repeat per node; "
                            "`mutualmind cluster witnesses` prints them)")
    check.add_argument("--witnesses", type=Path, metavar="FILE",
                       help="a file of trusted witness keys, one a line ('#' comments)")
    check.set_defaults(func=_check_proof)


def _verify(args: argparse.Namespace) -> int:
    from ledger.verify import verify_ledger

    notes = [_read(path) for path in args.checkpoint]
    report = verify_ledger(resolve_db(args.db), vkey=args.vkey, trusted_checkpoints=notes, workers=args.workers)
    if args.json:
        print(json.dumps(report.summary(), indent=2))
    elif report.ok:
        print(f"ok: {report.entries} entries, tree size {report.tree_size}, root {report.root.hex()}, "
              f"total supply {report.total_supply}, {report.checkpoints} checkpoints checked")
    if not report.ok:
        print(f"ledger verify: entry {report.first_bad_index}: {report.problem}: {report.error}",
              file=sys.stderr)
        return 1
    return 0


def _read(path: Path) -> str:
    """A text file the user named; every way it can be unreadable is one clear line."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"{path} does not exist") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a directory; give the file itself") from None
    except PermissionError:
        raise InvalidInput(f"{path} cannot be read (permission denied)") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not a UTF-8 text file (a proof or checkpoint is JSON/text)") from None


def _open(path: Path) -> Any:
    from ledger.ledger import Ledger

    return Ledger.open(path)


def _show(args: argparse.Namespace) -> int:
    if args.limit <= 0:
        raise InvalidInput("--limit must be positive")
    from ledger.store import read_recent
    from mutualmind.vocabulary.payloads import KINDS

    if args.kind is not None and args.kind not in KINDS:
        raise InvalidInput(f"unknown entry kind {args.kind!r}; kinds: {', '.join(KINDS)}")
    entries = read_recent(resolve_db(args.db), args.limit, args.kind, args.party)
    if not args.json:
        print(f"{'index':>8}  {'kind':<20} payload")
    for entry in entries:
        if args.json:
            print(json.dumps(entry.to_json(), sort_keys=True))
        else:
            print(f"{entry.index:>8}  {entry.kind:<20} {entry.payload_json.decode('utf-8')[:100]}")
    return 0


def _proof(args: argparse.Namespace) -> int:
    from ledger.proof_file import build_consistency, build_proof

    ledger = _open(resolve_db(args.db))
    try:
        stored = ledger.checkpoints()
        if not stored:
            raise NotFound("the ledger has no signed checkpoint yet; the coordinator signs one per round")
        if args.since is not None:
            document = build_consistency(ledger, _read(args.since), stored[-1][1])
        else:
            usable = [note for size, note in stored if size > args.index]
            if not usable:
                raise NotFound(f"no checkpoint covers entry {args.index} yet; wait for the next one")
            document = build_proof(ledger, args.index, usable[-1])
    finally:
        ledger.close()
    text = json.dumps(document, indent=2)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


def _head(args: argparse.Namespace) -> int:
    ledger = _open(resolve_db(args.db))
    try:
        if args.vkey_only:
            print(ledger.verifier_key())
            return 0
        stored = ledger.checkpoints()
        if not stored:
            raise NotFound("the ledger has no signed checkpoint yet")
        print(stored[-1][1], end="")
    finally:
        ledger.close()
    return 0


def _export(args: argparse.Namespace) -> int:
    from ledger.export import export_ledger

    entries = export_ledger(resolve_db(args.db), args.out, overwrite=args.force)
    print(f"exported {entries} entries to {args.out}")
    return 0


def _witness_keys(args: argparse.Namespace) -> list[Any]:
    """The trusted witnesses of --witness and --witnesses, each key once."""
    from ledger.cosignature import parse_cosigner_vkeys

    texts = list(args.witness)
    if args.witnesses is not None:
        texts.append(_read(args.witnesses))
    return parse_cosigner_vkeys("\n".join(texts))


def _check_proof(args: argparse.Namespace) -> int:
    from ledger.cosignature import check_quorum
    from ledger.proof_file import (
        CONSISTENCY_FORMAT,
        check_consistency,
        check_proof,
        load_proof,
    )

    cosigners = _witness_keys(args)
    if args.quorum < 0 or args.quorum > len(cosigners):
        raise InvalidInput(f"--quorum {args.quorum} needs at least that many witness keys, "
                           f"{len(cosigners)} given (--witness VKEY or --witnesses FILE; "
                           "`mutualmind cluster witnesses` prints them)")
    document = load_proof(_read(args.proof_file))
    vkey = args.vkey or document.get("verifier_key")
    if not isinstance(vkey, str):
        raise InvalidInput("give --vkey: the proof file names no verifier key")
    try:
        if document.get("format") == CONSISTENCY_FORMAT:
            old, new = check_consistency(document, vkey, cosigners=cosigners, quorum=args.quorum)
            line = f"ok: {new.origin} at size {new.size} extends the head at size {old.size}"
            note = str(document.get("new_checkpoint"))
        else:
            head, entry = check_proof(document, vkey, cosigners=cosigners, quorum=args.quorum)
            line = f"ok: entry {entry.index} ({entry.kind}) is in {head.origin} at tree size {head.size}"
            note = str(document.get("checkpoint"))
        if cosigners:
            found = check_quorum(note, cosigners, 0)
            line += f", cosigned by {len(found)} of {len(cosigners)} known witnesses"
        print(line)
    except MutualMindError as err:
        print(f"proof rejected: {err.message}", file=sys.stderr)
        return 1
    if not args.vkey:
        print("warning: the verifier key came from the proof file itself; pass --vkey with the "
              "coordinator's published key to rule out a forged log", file=sys.stderr)
    return 0
