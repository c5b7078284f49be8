"""The sponsor's signed OpenRound request, built and signed on the sponsor's machine.

A round locks the sponsor's pool, so the coordinator records it only with the sponsor's
Ed25519 signature over `ledger.entries.request_message("round_opened", payload)`, the
exact payload of the ledger entry. The coordinator rebuilds that payload from the
request (`Rounds.open_round`, with `mutualmind.vocabulary.model_spec.spec_for_ledger` turning the
spec's floats into decimal strings), so this module builds it the same way; the model
spec is first checked with the workers' own parser and sent with every default filled
in, so the ledger records exactly what will be trained.

The sponsor's command (`mutualmind provider open-round`, over the public Market port) and
the operator's (`mutualmind admin round open`) take the same flags (`add_terms_flags`) and
build the same terms from them (`terms_from_flags`), so the two can never drift apart.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.model_spec import parse_model_spec, spec_for_ledger, spec_keys_help
from mutualmind.vocabulary.payloads import request_message, validate_payload
from mutualmind.vocabulary.signing_keys import sign
from mutualmind.vocabulary.states import EntryKind
from proto import common_pb2, market_pb2

KIND_ROUND_OPENED = EntryKind.ROUND_OPENED
PPM = 1_000_000
MAX_TTL_HOURS = 30 * 24


@dataclass(frozen=True)
class RoundTerms:
    """What a sponsor offers: a pool over these datasets, judged on this validation set."""

    round_id: str
    sponsor: str
    pool: int
    model_spec: dict[str, Any]
    validation_dataset: str
    datasets: tuple[str, ...]
    slash_rate_ppm: int = 0
    epsilon_micro: int = 0
    expires_at_ms: int = 0     # 0: none signed (the coordinator's default TTL applies)
    # the model's price, tokens per 1,000 query rows (0: none signed, not for sale until
    # its owners set a price with a majority; docs/ownership.md)
    inference_price_per_1000_rows: int = 0


def checked_model_spec(raw: str | dict[str, Any]) -> dict[str, Any]:
    """The spec as the workers will train it (defaults filled); InvalidInput if not valid."""
    return asdict(parse_model_spec(raw))


def round_opened_payload(terms: RoundTerms, nonce: str) -> dict[str, Any]:
    """The `round_opened` ledger payload these terms stand for."""
    payload = {
        "round_id": terms.round_id, "sponsor": terms.sponsor, "pool": terms.pool,
        "model_spec": spec_for_ledger(terms.model_spec),
        "validation_dataset": terms.validation_dataset, "datasets": list(terms.datasets),
        "slash_rate_ppm": terms.slash_rate_ppm, "epsilon_micro": terms.epsilon_micro,
        "nonce": nonce,
    }
    if terms.expires_at_ms:
        payload["expires_at_ms"] = terms.expires_at_ms
    if terms.inference_price_per_1000_rows:
        payload["inference_price_per_1000_rows"] = terms.inference_price_per_1000_rows
    return payload


def check_terms(terms: RoundTerms) -> None:
    """Refuse what the ledger would refuse, before anything is signed or sent."""
    if not terms.datasets:
        raise InvalidInput("a round needs at least one training dataset (--dataset, repeat)")
    if len(set(terms.datasets)) != len(terms.datasets):
        raise InvalidInput("a dataset is listed twice; list each training dataset once")
    if terms.validation_dataset in terms.datasets:
        raise InvalidInput(f"{terms.validation_dataset!r} is both the validation set and a "
                           "training dataset; use a separate validation set")
    if terms.inference_price_per_1000_rows < 0:
        raise InvalidInput(f"the inference price must be 0 (not for sale) or a positive number "
                           f"of tokens per 1,000 rows, got {terms.inference_price_per_1000_rows}")
    if not 0 <= terms.slash_rate_ppm <= PPM:
        raise InvalidInput(f"slash rate must be 0..{PPM} ppm, got {terms.slash_rate_ppm}")
    validate_payload(KIND_ROUND_OPENED, round_opened_payload(terms, secrets.token_hex(16)))


def signed_open_round(key: Ed25519PrivateKey, terms: RoundTerms) -> market_pb2.OpenRoundRequest:
    """An OpenRound request signed by the sponsor with a fresh nonce from `secrets`."""
    check_terms(terms)
    nonce = secrets.token_hex(16)
    signature = sign(key, request_message(KIND_ROUND_OPENED, round_opened_payload(terms, nonce)))
    return market_pb2.OpenRoundRequest(
        round_id=terms.round_id, pool=terms.pool,
        model_spec_json=json.dumps(terms.model_spec, sort_keys=True),
        validation_dataset=terms.validation_dataset, datasets=list(terms.datasets),
        slash_rate_ppm=terms.slash_rate_ppm, epsilon_micro=terms.epsilon_micro,
        expires_at_ms=terms.expires_at_ms,
        inference_price_per_1000_rows=terms.inference_price_per_1000_rows,
        auth=common_pb2.ProviderAuth(provider_id=terms.sponsor, nonce=nonce,
                                     signature=signature))


# ---- the round's terms from command-line flags (shared by `provider` and `admin`) ------

def add_terms_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of a round's terms (everything but who signs)."""
    parser.add_argument("--round-id", required=True, help="the new round's id")
    parser.add_argument("--pool", required=True, help="reward pool, whole tokens")
    parser.add_argument("--model-spec", default='{"kind": "logistic"}',
                        help="model spec as JSON, or @FILE, e.g. '{\"kind\": \"logistic\", "
                             "\"epochs\": 20}' (default: logistic regression). Keys, all "
                             "optional, key=default: " + spec_keys_help().replace("%", "%%"))
    parser.add_argument("--validation-dataset", required=True,
                        help="the sponsor's held-out dataset (shared with --purpose validation)")
    parser.add_argument("--dataset", action="append", required=True,
                        help="a staked training dataset (repeat, in provider order)")
    parser.add_argument("--slash-rate-ppm", type=int, default=100_000,
                        help="share of stake lost when contribution < -epsilon (ppm, "
                             "default 100000 = 10%%)")
    parser.add_argument("--epsilon-micro", type=int, default=1_000,
                        help="dead band around zero contribution, millionths of the metric")
    parser.add_argument("--ttl-hours", type=float, default=24.0,
                        help="the round is aborted if not settled this many hours after "
                             "opening (signed; default 24)")
    parser.add_argument("--inference-price", metavar="TOKENS",
                        help="the trained model's price, whole tokens per 1,000 query rows "
                             "(signed; default: not for sale until its owners set a price)")


def whole_tokens(flag: str, text: str) -> int:
    """A positive whole number of tokens from a flag's text (InvalidInput otherwise)."""
    try:
        value = int(text, 10)
    except ValueError:
        raise InvalidInput(f"{flag} {text!r} is not a whole number of tokens") from None
    if value <= 0:
        raise InvalidInput(f"{flag} must be positive, got {value}")
    return value


def spec_text(text: str) -> str:
    """The model spec's JSON: the flag itself, or the file named after `@`."""
    if not text.startswith("@"):
        return text
    path = Path(text[1:])
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise InvalidInput(f"cannot read the model spec file {path}: {err.strerror}") from None


def terms_from_flags(args: argparse.Namespace, sponsor: str) -> RoundTerms:
    """The terms `add_terms_flags` describe, the expiry signed as now + --ttl-hours."""
    if not 0 < args.ttl_hours <= MAX_TTL_HOURS:
        raise InvalidInput(f"--ttl-hours must be within 0..{MAX_TTL_HOURS}, got {args.ttl_hours}")
    return RoundTerms(
        round_id=args.round_id, sponsor=sponsor, pool=whole_tokens("--pool", args.pool),
        model_spec=checked_model_spec(spec_text(args.model_spec)),
        validation_dataset=args.validation_dataset, datasets=tuple(args.dataset),
        slash_rate_ppm=args.slash_rate_ppm, epsilon_micro=args.epsilon_micro,
        expires_at_ms=int((time.time() + args.ttl_hours * 3600) * 1000),
        inference_price_per_1000_rows=(whole_tokens("--inference-price", args.inference_price)
                                       if args.inference_price is not None else 0))
