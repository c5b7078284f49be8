"""`mutualmind provider keygen|register|share|resume|stake|balance|collect-model|proof` (and
`terms|unstake|abort-round` from `consent_cli.py`, `open-round|round-show` from
`sponsor_cli.py`): the provider's command line.

Sharing runs here, on the provider's machine: the table is loaded, validated, encoded and
split locally; only shares (one per node) and signed commitments leave the machine.
`--certs` is a folder holding the cluster CA certificate (`ca.pem`); when it also holds
the cluster manifest (`cluster.json`), node receipts are checked against the nodes' keys.
The provider id is the name given to `keygen --id`; it is kept next to the key in
`<key>.id` so later commands need only `--key`.

Every channel is opened for the member it means (`coordinator`, node i's name from the
manifest, else `node<i>`), so the TLS handshake fails - before a byte of share i is
sent - unless the server at --node i holds node i's certificate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mutualmind.errors import InvalidInput
from provider import consent_cli, sponsor_cli

DATA_DIR_ENV = "MUTUALMIND_DATA_DIR"   # the same variable the admin commands read


def register(subparsers: Any) -> None:
    provider = subparsers.add_parser("provider", help="data provider: keys, registration, sharing, stake")
    sub = provider.add_subparsers(dest="provider_command", metavar="ACTION", required=True)

    keygen = sub.add_parser("keygen", help="make an Ed25519 key (PEM, mode 0600) for a provider id")
    keygen.add_argument("--key", type=Path, required=True, help="file to write (refuses to overwrite)")
    keygen.add_argument("--id", required=True, help="the provider id to register under (e.g. hospital-a)")
    keygen.set_defaults(func=run_keygen)

    def local(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", type=Path, default=os.environ.get(DATA_DIR_ENV),
                       help="data dir of a local cluster (`cluster up`): fills in --coordinator, "
                            f"--certs and --node [env {DATA_DIR_ENV}]")

    def market(p: argparse.ArgumentParser) -> None:
        p.add_argument("--key", type=Path, required=True, help="the provider's key file")
        p.add_argument("--coordinator", help="coordinator market address host:port")
        p.add_argument("--certs", type=Path, help="folder with the cluster's ca.pem")
        local(p)

    reg = sub.add_parser("register", help="register this key and provider id with the coordinator")
    market(reg)
    reg.set_defaults(func=_with_cluster(run_register))

    share = sub.add_parser("share", help="share a table over the nodes and register it")
    market(share)
    share.add_argument("--dataset-id", required=True,
                       help="the dataset's id, new in the market (up to 64 letters, digits, ., _, -)")
    source = share.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", type=Path, help="a CSV file with a header row")
    source.add_argument("--sklearn", help="a scikit-learn bundled dataset (breast_cancer, wine, digits, iris, diabetes)")
    share.add_argument("--features", help="comma-separated feature columns (default: all but the label)")
    share.add_argument("--label", help="the label column (default for --sklearn: target)")
    share.add_argument("--schema", type=Path, help="the round's schema (JSON: columns, feature_columns, label_column)")
    share.add_argument("--purpose", choices=("training", "validation"), default="training",
                       help="training (a round's data, default) or validation (a sponsor's held-out set)")
    rows = share.add_mutually_exclusive_group()
    rows.add_argument("--rows", metavar="A:B",
                      help="share only rows A to B-1 of the table (counted from 0, as in Python)")
    rows.add_argument("--split", metavar="K/N",
                      help="share only the K-th (from 0) of N disjoint random parts of the table; "
                           "N providers using the same N and --seed get disjoint parts")
    share.add_argument("--seed", type=int, metavar="S",
                       help="the seed of --split's shuffle (default 0); the same for every part")
    share.add_argument("--labels", default="binary", metavar="KIND",
                       help="what the label column holds, checked before anything is shared and "
                            "signed in the registration: binary (0/1, default), classes:K "
                            "(0..K-1) or real (a regression target)")
    share.add_argument("--node", action="append", metavar="HOST:PORT",
                       help="node public address, once per node in index order (default: the coordinator's node directory)")
    _attempts_flag(share)
    consent_cli.add_terms_flags(share)
    share.set_defaults(func=_with_cluster(run_share))

    resume = sub.add_parser("resume", help="finish the upload of a registered dataset after a failure")
    resume.add_argument("--key", type=Path, required=True, help="the provider's key file")
    resume.add_argument("--certs", type=Path, help="folder with the cluster's ca.pem")
    resume.add_argument("--coordinator", help="coordinator market address host:port, for its "
                                              "node directory (not needed with --node)")
    resume.set_defaults(coordinator_optional=True)
    local(resume)
    resume.add_argument("--dataset-id", required=True,
                        help="the dataset's id whose upload failed (its shares are kept next to --key)")
    resume.add_argument("--node", action="append", metavar="HOST:PORT",
                        help="node public address, once per node in index order (default: the coordinator's node directory)")
    _attempts_flag(resume)
    resume.set_defaults(func=_with_cluster(run_resume))

    stake = sub.add_parser("stake", help="stake tokens on a dataset")
    market(stake)
    stake.add_argument("--dataset-id", required=True, help="one of your registered datasets")
    stake.add_argument("--amount", type=int, required=True, help="whole token units")
    stake.set_defaults(func=_with_cluster(run_stake))

    balance = sub.add_parser("balance", help="show balance and stakes")
    market(balance)
    balance.set_defaults(func=_with_cluster(run_balance))

    collect = sub.add_parser("collect-model",
                             help="(sponsor) fetch every node's model share of a closed round and rebuild the model")
    market(collect)
    collect.add_argument("--round-id", required=True, help="a closed round you sponsored")
    collect.add_argument("--node", action="append", metavar="HOST:PORT",
                         help="node public address, once per node in index order (default: the coordinator's node directory)")
    collect.add_argument("--out", type=Path, required=True, help="JSON model file to write")
    collect.add_argument("--evaluate", type=Path, metavar="CSV",
                         help="also score the model on this CSV (header row; the model's feature columns "
                              "and its label column, raw units as shared): the printed JSON gains "
                              "`accuracy` (share of rows predicted right; classifiers) or `mse` (mean "
                              "squared error in the label's units; regression) and `rows`")
    collect.add_argument("--label", help="label column of --evaluate (default: the round's label column)")
    collect.set_defaults(func=_with_cluster(run_collect_model))

    proof = sub.add_parser("proof", help="fetch an inclusion proof of a ledger entry and check it offline")
    proof.add_argument("--entry", type=int, required=True, metavar="N", help="the ledger index to prove")
    proof.add_argument("--coordinator", help="coordinator market address host:port")
    proof.add_argument("--certs", type=Path, help="folder with the cluster's ca.pem")
    proof.add_argument("--vkey", help="the coordinator's verifier key (`mutualmind ledger head --vkey-only`; "
                                      "default with --data-dir: the local cluster's ledger)")
    proof.add_argument("--out", type=Path, help="also write the proof file `ledger check-proof` reads")
    proof.add_argument("--quorum", type=int, default=0, metavar="K",
                       help="accept the coordinator's checkpoint only when at least K distinct nodes "
                            "cosigned it (node keys from --certs' cluster.json, else the "
                            "coordinator's node directory); default 0: not required")
    local(proof)
    proof.set_defaults(func=_with_cluster(run_proof))

    catalog = sub.add_parser("catalog", help="list the market's datasets: schema, rows, terms, stake")
    catalog.add_argument("--coordinator", help="coordinator market address host:port")
    catalog.add_argument("--certs", type=Path, help="folder with the cluster's ca.pem")
    catalog.add_argument("--provider", default="", help="only this provider's datasets")
    catalog.add_argument("--json", action="store_true", help="one JSON object per dataset, one a line")
    local(catalog)
    catalog.set_defaults(func=_with_cluster(run_catalog))
    rounds = sub.add_parser("rounds", help="list the market's rounds: status, sponsor, pool, datasets, results")
    rounds.add_argument("--coordinator", help="coordinator market address host:port")
    rounds.add_argument("--certs", type=Path, help="folder with the cluster's ca.pem")
    rounds.add_argument("--status", default="", choices=["", "open", "running", "result", "closed", "aborted"],
                        help="only rounds in this status (default: every round)")
    rounds.add_argument("--json", action="store_true", help="one JSON object per round, one a line")
    local(rounds)
    rounds.set_defaults(func=_with_cluster(run_rounds))

    history = sub.add_parser("history", help="your stakes, unstakes, payouts and slashes on the ledger")
    market(history)
    history.add_argument("--limit", type=int, default=0, help="at most this many entries (default: up to 1000)")
    history.add_argument("--json", action="store_true", help="one JSON object per entry, one a line")
    history.set_defaults(func=_with_cluster(run_history))

    consent_cli.register(sub, market, _with_cluster)
    sponsor_cli.register(sub, market, local, _with_cluster)


def resolve_cluster(args: argparse.Namespace) -> None:
    """Fill --coordinator, --certs and --node from a local cluster's state when given
    --data-dir (flags given explicitly win); refuse with one line when any is missing."""
    if getattr(args, "data_dir", None) is not None:
        from mutualmind.transport.cluster_state import load_state

        state = load_state(args.data_dir)
        if hasattr(args, "coordinator"):
            args.coordinator = args.coordinator or state.market_address
        args.certs = args.certs or state.certs_dir
        if hasattr(args, "node"):
            args.node = args.node or list(state.node_public_addresses)
    # --node is optional: without it the nodes come from the coordinator's directory
    for flag, name in (("--coordinator", "coordinator"), ("--certs", "certs")):
        if name == "coordinator" and getattr(args, "coordinator_optional", False):
            continue  # resume: checked in _resolve_nodes, only when --node is missing
        if hasattr(args, name) and not getattr(args, name):
            raise InvalidInput(f"{flag} is required (or --data-dir DIR of a local cluster)")


def _with_cluster(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def resolved(args: argparse.Namespace) -> int:
        resolve_cluster(args)
        return run(args)
    return resolved


def _id_file(key: Path) -> Path:
    return key.with_name(key.name + ".id")


def run_keygen(args: argparse.Namespace) -> int:
    """Check the id, write the key (0600, never overwriting), then the id next to it."""
    from mutualmind.vocabulary.payloads import party_id
    from mutualmind.vocabulary.signing_keys import (
        generate_signing_key,
        public_key_bytes,
        save_private_key,
    )

    party_id("--id", args.id)
    if _id_file(args.key).exists():
        raise InvalidInput(f"{_id_file(args.key)} already exists; refusing to overwrite a provider identity")
    key = generate_signing_key()
    save_private_key(key, args.key)
    _id_file(args.key).write_text(args.id + "\n", encoding="utf-8")
    public = public_key_bytes(key)
    print(json.dumps({"provider_id": args.id, "public_key": public.hex(), "key": str(args.key)}))
    return 0


def _market(args: argparse.Namespace) -> Any:
    from mutualmind.transport import channel_credentials, open_channel
    from mutualmind.transport.pki import COORDINATOR_NAME
    from mutualmind.vocabulary.signing_keys import load_private_key
    from provider.client import MarketClient

    key = load_private_key(args.key)
    try:
        provider_id = _id_file(args.key).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise InvalidInput(
            f"{_id_file(args.key)} is missing: make the key with `mutualmind provider keygen --id ...`"
        ) from None
    channel = open_channel(args.coordinator, channel_credentials(args.certs, None),
                           server_name=COORDINATOR_NAME)
    return MarketClient(channel=channel, key=key, provider_id=provider_id)


def _verifier_key(args: argparse.Namespace) -> str:
    """--vkey, else the local cluster's ledger's key (read-only; nothing is written)."""
    if args.vkey:
        return str(args.vkey)
    if args.data_dir is None:
        raise InvalidInput("give --vkey (the coordinator's `ledger head --vkey-only`) or "
                           "--data-dir of a local cluster")
    from ledger import Ledger
    from ledger.cli import CLUSTER_LEDGER

    with Ledger.open(Path(args.data_dir) / CLUSTER_LEDGER) as ledger:
        return ledger.verifier_key()


def run_proof(args: argparse.Namespace) -> int:
    from mutualmind.transport import channel_credentials, open_channel
    from mutualmind.transport.pki import COORDINATOR_NAME
    from provider.client import fetch_inclusion_proof
    from provider.proof import check_reply

    if args.quorum < 0:
        raise InvalidInput(f"--quorum must be 0 or more, got {args.quorum}")
    vkey = _verifier_key(args)
    channel = open_channel(args.coordinator, channel_credentials(args.certs, None),
                           server_name=COORDINATOR_NAME)
    try:
        witnesses = _witnesses(args.certs, channel) if args.quorum else []
        if args.quorum > len(witnesses):
            raise InvalidInput(f"--quorum {args.quorum} is more than the cluster's "
                               f"{len(witnesses)} nodes")
        reply = fetch_inclusion_proof(channel, args.entry)
    finally:
        channel.close()
    document, head, entry, cosigned = check_reply(reply, args.entry, vkey, cosigners=witnesses,
                                                  quorum=args.quorum)
    if args.out:
        args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    line = f"ok: entry {entry.index} ({entry.kind}) is in {head.origin} at tree size {head.size}"
    if args.quorum:
        line += f", cosigned by {len(cosigned)} of {len(witnesses)} nodes"
    print(line)
    return 0


def _witnesses(certs: Path, channel: Any) -> list[Any]:
    """The nodes as checkpoint witnesses: names and keys from the cluster manifest in
    --certs when it has one (trusted), else from the coordinator's directory (its word)."""
    from ledger.cosignature import Cosigner
    from mutualmind.transport.pki import MANIFEST_NAME, load_manifest
    from provider.client import list_nodes

    if (certs / MANIFEST_NAME).is_file():
        return [Cosigner(n.name, n.signing_public_key or b"") for n in load_manifest(certs).nodes]
    return [Cosigner(n.name, bytes(n.signing_key)) for n in list_nodes(channel)]


def run_register(args: argparse.Namespace) -> int:
    client = _market(args)
    try:
        reply = client.register()
    finally:
        client.channel.close()
    print(json.dumps({"provider_id": reply.provider_id, "ledger_index": reply.ledger_index}))
    return 0


def _load_table(args: argparse.Namespace) -> Any:
    from mutualmind.vocabulary.dataset import TableSchema
    from provider.row_selection import parse_rows, parse_split, select_rows
    from provider.sharing import (
        Table,
        load_csv,
        load_sklearn,
        parse_label_kind,
        validate_table,
    )

    # a mistake in the row flags themselves is named before any table is read (a
    # scikit-learn table takes a second or two to import and load)
    if args.seed is not None and args.split is None:
        raise InvalidInput("--seed only applies to --split K/N")
    if args.rows is not None:
        parse_rows(args.rows)
    if args.split is not None:
        parse_split(args.split)
    features = [c.strip() for c in args.features.split(",")] if args.features else None
    if args.csv is not None:
        if not args.label:
            raise InvalidInput("give --label COL for a CSV: the column the model learns to predict")
        table = load_csv(args.csv, feature_columns=features, label_column=args.label)
    else:
        table = load_sklearn(args.sklearn, feature_columns=features, label_column=args.label or "target")
    values = select_rows(table.values, rows=args.rows, split=args.split,
                         seed=0 if args.seed is None else args.seed)
    table = Table(values, table.schema)
    expected = None
    if args.schema is not None:
        try:
            raw = json.loads(args.schema.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise InvalidInput(f"cannot read the schema file {args.schema}: {err}") from None
        expected = TableSchema.from_dict(raw)
    validate_table(table, expected_schema=expected, label_classes=parse_label_kind(args.labels))
    return table


def _coordinator_channel(args: argparse.Namespace) -> Any:
    from mutualmind.transport import channel_credentials, open_channel
    from mutualmind.transport.pki import COORDINATOR_NAME

    return open_channel(args.coordinator, channel_credentials(args.certs, None),
                        server_name=COORDINATOR_NAME)


def _resolve_nodes(args: argparse.Namespace) -> None:
    """Without --node, take node addresses, certificate names and receipt keys from the
    coordinator's directory (ListNodes), in its index order; --node overrides."""
    args.directory = None
    if args.node:
        return
    from provider.client import list_nodes

    if not args.coordinator:
        raise InvalidInput("give --coordinator (its node directory) or --node once per node")
    channel = _coordinator_channel(args)
    try:
        args.directory = list_nodes(channel)
    finally:
        channel.close()
    args.node = [n.public_address for n in args.directory]


def collection_nodes(args: argparse.Namespace) -> list[bytes]:
    """For a model collection: resolve the nodes, return their receipt keys, and check
    --out's folder exists (before any share is fetched)."""
    _resolve_nodes(args)
    keys = _node_keys(args.certs, len(args.node), args.directory)
    if keys is None:
        raise InvalidInput(f"{args.certs} must hold the cluster manifest (cluster.json) naming "
                           f"the keys of all {len(args.node)} nodes, to check who sent each share")
    if not args.out.parent.is_dir():
        raise InvalidInput(f"folder {args.out.parent} does not exist; create it or choose another --out")
    return keys


def _node_keys(certs: Path, count: int, directory: Any = None) -> list[bytes] | None:
    """Node i's receipt key: the manifest's (when --certs holds one), else the directory's."""
    from mutualmind.transport.pki import MANIFEST_NAME, load_manifest

    if not (certs / MANIFEST_NAME).is_file():
        if directory and len(directory) == count and all(len(n.signing_key) == 32 for n in directory):
            return [bytes(n.signing_key) for n in directory]
        return None
    nodes = load_manifest(certs).nodes
    keys = [n.signing_public_key for n in nodes]
    if len(keys) != count or any(k is None for k in keys):
        return None
    return keys  # type: ignore[return-value]


def _node_names(args: argparse.Namespace) -> list[str]:
    """The member name each --node i must present: the manifest's name for node i, or
    `node<i>` when --certs holds only ca.pem. Checked before anything is registered."""
    from mutualmind.transport.pki import MANIFEST_NAME, load_manifest, node_name

    if not (args.certs / MANIFEST_NAME).is_file():
        if getattr(args, "directory", None):
            return [n.name for n in args.directory]
        return [node_name(i) for i in range(len(args.node))]
    manifest = load_manifest(args.certs)
    if len(manifest.nodes) != len(args.node):
        raise InvalidInput(f"the cluster in {args.certs} has {len(manifest.nodes)} nodes; give "
                           f"{len(manifest.nodes)} --node addresses in index order, got {len(args.node)}")
    return [manifest.node_name(i) for i in range(len(args.node))]


def _node_channels(args: argparse.Namespace) -> list[Any]:
    """A channel to each --node i that talks only to node i (its name is the TLS server
    name, so a server holding another member's certificate fails the handshake)."""
    from mutualmind.transport import channel_credentials, open_channel

    names = _node_names(args)
    credentials = channel_credentials(args.certs, None)
    return [open_channel(address, credentials, server_name=name)
            for address, name in zip(args.node, names)]


UPLOAD_ATTEMPTS = 3


def _attempts(text: str) -> int:
    """`--attempts`: a whole number from 1 (argparse prints the refusal as one line)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1")
    return value


def _attempts_flag(parser: argparse.ArgumentParser) -> None:
    # Each try of an unreachable node waits out the channel's own retries (~3 s), so a
    # scripted run that would rather `resume` later than wait can try once.
    parser.add_argument("--attempts", type=_attempts, default=UPLOAD_ATTEMPTS, metavar="N",
                        help=f"how often each node's upload is tried before the command stops "
                             f"and keeps the shares for `resume` (default {UPLOAD_ATTEMPTS})")


def _upload(args: argparse.Namespace, shared: Any, *, resuming: bool) -> list[Any]:
    """Upload share i to --node i with a progress bar on stderr; retries transient failures."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from provider.client import upload_shares

    if len(args.node) != len(shared.shares):
        raise InvalidInput(f"{args.dataset_id!r} was shared over {len(shared.shares)} nodes; "
                           f"give {len(shared.shares)} --node addresses, got {len(args.node)}")
    channels = _node_channels(args)
    size = shared.rows * shared.cols * 8
    try:
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), console=Console(stderr=True)) as bar:
            tasks = [bar.add_task(f"node {i}", total=size) for i in range(len(channels))]
            return upload_shares(
                channels, args.dataset_id, shared,
                node_public_keys=_node_keys(args.certs, len(channels), getattr(args, "directory", None)),
                progress=lambda node, sent: bar.update(tasks[node], completed=sent),
                attempts=args.attempts, already_stored_ok=resuming,
            )
    finally:
        for channel in channels:
            channel.close()


def _upload_or_keep(args: argparse.Namespace, shared: Any, pending: Path, *, resuming: bool) -> list[Any]:
    """Upload; on success forget the pending shares, on failure say how to resume."""
    from mutualmind.errors import MutualMindError
    from provider.pending import remove_pending

    try:
        receipts = _upload(args, shared, resuming=resuming)
    except MutualMindError:
        # nodes from the directory: the hint names none, resume asks the coordinator again
        nodes = "" if getattr(args, "directory", None) else " " + " ".join(f"--node {a}" for a in args.node)
        print(f"mutualmind: the registered shares of {args.dataset_id!r} are kept in "
              f"{pending / args.dataset_id}; when the nodes are reachable run: mutualmind provider "
              f"resume --key {args.key}"
              + (f" --coordinator {args.coordinator}" if args.coordinator else "")
              + f" --certs {args.certs} "
              f"--dataset-id {args.dataset_id}{nodes}", file=sys.stderr)
        raise
    remove_pending(pending, args.dataset_id)
    return receipts


def run_share(args: argparse.Namespace) -> int:
    """Validate and share locally first (nothing leaves the machine for a bad table).

    The shares are saved next to the key before the registration goes to the ledger, so
    a failed upload can be resumed with the very shares whose commitments were signed.
    """
    from provider.pending import pending_dir_for, remove_pending, save_pending
    from provider.sharing import parse_label_kind, share_table

    # local input first: a bad file or flag is named without waiting for the network
    terms = consent_cli.terms_from_args(args)
    label_classes = parse_label_kind(args.labels)
    table = _load_table(args)
    _resolve_nodes(args)
    _node_names(args)   # a wrong --node count is refused before anything is registered
    shared = share_table(table, len(args.node), label_classes=label_classes)
    pending = pending_dir_for(args.key)
    client = _market(args)
    try:
        save_pending(pending, args.dataset_id, shared)
        try:
            _, reply = client.register_dataset(args.dataset_id, shared, purpose=args.purpose,
                                               terms=terms)
        except BaseException:
            remove_pending(pending, args.dataset_id)
            raise
    finally:
        client.channel.close()
    receipts = _upload_or_keep(args, shared, pending, resuming=False)
    print(json.dumps({
        "dataset_id": args.dataset_id, "rows": shared.rows, "cols": shared.cols,
        "ledger_index": reply.ledger_index,
        "commitments": [c.hex() for c in shared.commitments],
        "stored_bytes": [r.bytes_received if r is not None else shared.rows * shared.cols * 8 for r in receipts],
    }))
    return 0


def run_resume(args: argparse.Namespace) -> int:
    """Upload the kept shares of a registered dataset to the nodes that lack them."""
    from provider.pending import load_pending, pending_dir_for

    pending = pending_dir_for(args.key)
    shared = load_pending(pending, args.dataset_id)
    _resolve_nodes(args)
    receipts = _upload_or_keep(args, shared, pending, resuming=True)
    print(json.dumps({
        "dataset_id": args.dataset_id,
        "uploaded_to": [i for i, r in enumerate(receipts) if r is not None],
        "already_held_by": [i for i, r in enumerate(receipts) if r is None],
    }))
    return 0


def run_stake(args: argparse.Namespace) -> int:
    client = _market(args)
    try:
        reply = client.stake(args.dataset_id, args.amount)
    finally:
        client.channel.close()
    print(json.dumps({"ledger_index": reply.ledger_index, "staked": reply.staked, "balance": reply.balance}))
    return 0


def run_balance(args: argparse.Namespace) -> int:
    client = _market(args)
    try:
        reply = client.balance()
    finally:
        client.channel.close()
    print(json.dumps({"provider_id": reply.provider_id, "balance": reply.balance,
                      "staked": reply.staked, "stakes": dict(reply.stakes)}))
    return 0


def run_collect_model(args: argparse.Namespace) -> int:
    """Collect, check and rebuild the model; write it atomically; one JSON summary line."""
    from provider.model_collect import collect_model, evaluate, write_model
    from provider.sharing import load_csv

    keys = collection_nodes(args)
    if args.evaluate is not None and not args.evaluate.is_file():
        raise InvalidInput(f"no CSV file at {args.evaluate} to evaluate the model on")
    channels = _node_channels(args)
    try:
        client = _market(args)
        try:
            model = collect_model(client.channel, channels, client.key, client.provider_id,
                                  args.round_id, keys)
        finally:
            client.channel.close()
    finally:
        for channel in channels:
            channel.close()
    summary: dict[str, Any] = {
        "round_id": model.round_id, "out": str(args.out), "nodes": len(model.shares),
        "kind": model.spec.kind, "job_digest": model.job_digest,
        "tensors": {name: list(t.shape) for name, t in sorted(model.tensors.items())},
    }
    if args.evaluate is not None:
        table = load_csv(args.evaluate, feature_columns=model.feature_columns,
                         label_column=args.label or model.label_column)
        metric, value = evaluate(model, table.values[:, :-1], table.values[:, -1])
        summary[metric] = round(value, 6)
        summary["rows"] = table.rows
    write_model(args.out, model)
    print(json.dumps(summary))
    return 0


def run_catalog(args: argparse.Namespace) -> int:
    """The dataset catalog as a table (or JSON lines): what a sponsor can ask rounds of."""
    from provider.client import list_datasets

    channel = _coordinator_channel(args)
    try:
        datasets = list_datasets(channel, args.provider)
    finally:
        channel.close()
    rows = [{"dataset_id": d.dataset_id, "provider_id": d.provider_id, "purpose": d.purpose,
             "rows": d.rows, "cols": d.cols, "schema": json.loads(d.schema_json),
             "terms": json.loads(d.terms_json), "staked": d.staked} for d in datasets]
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"datasets ({len(rows)})")
    for column in ("dataset", "provider", "purpose", "rows", "cols", "label", "staked", "terms"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["dataset_id"], r["provider_id"], r["purpose"], str(r["rows"]), str(r["cols"]),
                      str(r["schema"].get("label_column", "")), str(r["staked"]),
                      json.dumps(r["terms"], sort_keys=True))
    Console(width=200).print(table)
    return 0


def run_rounds(args: argparse.Namespace) -> int:
    """The market's rounds as a table (or JSON lines): which are open to join or watch."""
    from provider.client import list_rounds

    channel = _coordinator_channel(args)
    try:
        rounds = list_rounds(channel, args.status)
    finally:
        channel.close()
    rows = [{"round_id": r.round_id, "status": r.status, "sponsor": r.sponsor, "pool": r.pool,
             "model_spec": json.loads(r.model_spec_json or "{}"), "validation_dataset": r.validation_dataset,
             "datasets": [p.dataset_id for p in r.participants],
             "contributions_micro": [p.contribution_micro for p in r.participants],
             "payouts": [p.payout for p in r.participants], "expires_at_ms": r.expires_at_ms}
            for r in rounds]
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"rounds ({len(rows)})")
    for column in ("round", "status", "sponsor", "pool", "model", "datasets", "paid"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["round_id"], r["status"], r["sponsor"], str(r["pool"]), str(r["model_spec"].get("kind", "")),
                      ", ".join(r["datasets"]), str(sum(r["payouts"])))
    Console(width=200).print(table)
    return 0


def run_history(args: argparse.Namespace) -> int:
    """This key's provider's stakes, unstakes, payouts and slashes, oldest first."""
    from provider.client import provider_history

    client = _market(args)
    try:
        entries = provider_history(client.channel, client.provider_id, args.limit)
    finally:
        client.channel.close()
    rows = [{"index": e.index, "kind": e.kind, **json.loads(e.payload_json)} for e in entries]
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"history of {client.provider_id} ({len(rows)} entries)")
    for column in ("entry", "kind", "dataset", "round", "amount"):
        table.add_column(column)
    for r in rows:
        table.add_row(str(r["index"]), r["kind"], str(r.get("dataset_id", "")), str(r.get("round_id", "")),
                      str(r.get("amount", "")))
    Console(width=200).print(table)
    return 0
