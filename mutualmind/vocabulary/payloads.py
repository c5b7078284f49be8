"""Entry kinds, their payloads and who signs them: the requests every role builds or checks.

The ledger (`ledger/entries.py`) stores and hashes entries of these kinds; providers sign
`request_message(kind, payload)` on their own machine and nodes check the same bytes.

Every kind below lists its payload fields (exactly these keys, no others) and the rules
`state.py` enforces when it is appended or replayed. Amounts are integers in token units,
metrics and contributions integers in millionths, nonces strings (clients use
`secrets.token_hex(16)`); a nonce is single-use per signing party.

| kind | payload | signed by | rules |
| --- | --- | --- | --- |
| genesis | coordinator_key (hex), origin, params {} | coordinator | entry 0 only |
| node_registered | node_index, name, signing_key (hex) | coordinator | index unused, key unused |
| provider_registered | provider_id, name, public_key (hex), nonce | the new key itself | id unused |
| mint | to, amount, memo | coordinator | `to` registered; amount > 0 |
| transfer | from, to, amount, nonce | `from` | both registered; amount <= balance |
| dataset_registered | dataset_id, provider_id, rows, cols, frac_bits, schema {columns, feature_columns, label_column}, share_commitments [hex per node], purpose, nonce, optional terms {min_datasets, model_kinds, max_slash_rate_ppm, min_pool_per_row, sponsors} | provider_id | id unused; one commitment per registered node; no terms = `dataset_terms.DEFAULT_TERMS` |
| dataset_terms_updated | dataset_id, provider_id, terms {as above}, nonce | provider_id | provider owns the dataset; binds rounds opened after it (open rounds keep the terms they were opened under) |
| stake / unstake | provider_id, dataset_id, amount, nonce | provider_id | provider owns the dataset; stake <= balance; unstake <= stake and not while in an open round |
| round_opened | round_id, sponsor, pool, model_spec {}, validation_dataset, datasets [], slash_rate_ppm, epsilon_micro, nonce, optional expires_at_ms | sponsor | pool <= sponsor's balance (locked); datasets staked, training, same schema as the validation set; model_spec parses with the workers' `parse_model_spec` and its work fits `check_workload`; every dataset's terms allow the round (`dataset_terms.check_round`); no expires_at_ms = the coordinator's default TTL from the entry's time |
| round_result | round_id, job_digest (hex), metrics_micro [n+1], contributions_micro [n], attestations [{node_index, signature}] | every node (attestation) | round open; job_digest = `mutualmind.vocabulary.job_digest` of the round_opened payload and its datasets; one valid attestation per registered node |
| slash | round_id, dataset_id, provider_id, amount | coordinator | after the result; contribution < -epsilon; amount <= stake; once per dataset; stake -> pool |
| payout | round_id, to, amount | coordinator | after the result; amount <= pool; pool -> balance |
| round_closed | round_id | coordinator | after the result; pool exactly 0 |
| round_abort_requested | round_id, sponsor, reason, nonce | sponsor | round open; the round's own sponsor; moves nothing (the coordinator's round_aborted follows in the same group commit) |
| round_aborted | round_id, reason | coordinator | round not closed; pool -> sponsor, stakes unlock (on restart, sponsor or admin abort, expiry, K failed runs) |
| round_verified | round_id, job_digest, recomputed_micro [n], max_abs_diff_micro, tolerance_micro, verdict | coordinator | round closed; moves nothing (records an `admin round verify` re-run) |

"Signed by" a party means the entry carries that party's Ed25519 signature over
`request_message(kind, payload)`, which binds the kind as well as the payload so a signed
stake cannot be replayed as an unstake. Every entry is also signed by the coordinator
over its entry hash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from mutualmind.errors import InvalidInput, RuleViolation
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.model_spec import MODEL_KINDS

REQUEST_DOMAIN = b"mutualmind/request/v1\n"
AMOUNT_LIMIT = 2**62
PPM = 1_000_000

_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
_HEX32_RE = re.compile(r"[0-9a-f]{64}")
_HEX64_RE = re.compile(r"[0-9a-f]{128}")
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{8,128}")

# dataset terms (see mutualmind.vocabulary.dataset_terms for what each means)
TERMS_FIELDS = ("min_datasets", "model_kinds", "max_slash_rate_ppm", "min_pool_per_row",
                "sponsors")
MIN_DATASETS_FLOOR = 3        # no terms may allow a round of fewer datasets
MAX_DATASETS_PER_ROUND = 1024
MAX_SPONSORS = 256

Validator = Callable[[str, Any], None]


def _fail(name: str, what: str) -> None:
    raise InvalidInput(f"payload field {name!r} {what}")


def party_id(name: str, value: Any) -> None:
    if type(value) is not str or not _ID_RE.fullmatch(value):
        _fail(name, "must be an id of 1-128 letters, digits or ._:@- (starting alphanumeric)")


def text(name: str, value: Any) -> None:
    if type(value) is not str or len(value) > 1024:
        _fail(name, "must be a string of at most 1024 characters")


def hex32(name: str, value: Any) -> None:
    if type(value) is not str or not _HEX32_RE.fullmatch(value):
        _fail(name, "must be 64 lowercase hex characters (32 bytes)")


def nonce(name: str, value: Any) -> None:
    if type(value) is not str or not _NONCE_RE.fullmatch(value):
        _fail(name, "must be 8-128 characters of [A-Za-z0-9_-] (use secrets.token_hex(16))")


def amount(name: str, value: Any) -> None:
    if type(value) is not int:
        _fail(name, "must be an integer number of token units")
    if value <= 0:
        raise RuleViolation("amount_not_positive", f"{name} must be positive, got {value}")
    if value >= AMOUNT_LIMIT:
        raise RuleViolation("amount_too_large", f"{name} must be below 2^62, got {value}")


def count(name: str, value: Any) -> None:
    if type(value) is not int or value < 0 or value >= AMOUNT_LIMIT:
        _fail(name, "must be a non-negative integer")


def integer(name: str, value: Any) -> None:
    if type(value) is not int:
        _fail(name, "must be an integer")


def obj(name: str, value: Any) -> None:
    if type(value) is not dict:
        _fail(name, "must be a JSON object")


def int_list(name: str, value: Any) -> None:
    if type(value) is not list or any(type(v) is not int for v in value):
        _fail(name, "must be a list of integers")


def id_list(name: str, value: Any) -> None:
    if type(value) is not list or not value:
        _fail(name, "must be a non-empty list of ids")
    for pos, item in enumerate(value):
        party_id(f"{name}[{pos}]", item)
    if len(set(value)) != len(value):
        _fail(name, "must not name an id twice")


def hex32_list(name: str, value: Any) -> None:
    if type(value) is not list or not value:
        _fail(name, "must be a non-empty list of hex hashes")
    for pos, item in enumerate(value):
        hex32(f"{name}[{pos}]", item)


def purpose(name: str, value: Any) -> None:
    if value not in ("training", "validation"):
        _fail(name, "must be 'training' or 'validation'")


def verdict(name: str, value: Any) -> None:
    if value not in ("agrees", "disagrees"):
        _fail(name, "must be 'agrees' or 'disagrees'")


def ppm(name: str, value: Any) -> None:
    if type(value) is not int or not 0 <= value <= PPM:
        _fail(name, f"must be an integer from 0 to {PPM} (parts per million)")


def frac_bits(name: str, value: Any) -> None:
    if type(value) is not int or not 0 <= value <= 62:
        _fail(name, "must be an integer from 0 to 62")


def schema(name: str, value: Any) -> None:
    obj(name, value)
    if set(value) != {"columns", "feature_columns", "label_column"}:
        _fail(name, "must hold exactly columns, feature_columns and label_column")
    for key in ("columns", "feature_columns"):
        column_names = value[key]
        if type(column_names) is not list or any(type(c) is not str for c in column_names):
            _fail(f"{name}.{key}", "must be a list of column names")
    text(f"{name}.label_column", value["label_column"])


def attestations(name: str, value: Any) -> None:
    if type(value) is not list or not value:
        _fail(name, "must be a non-empty list of {node_index, signature}")
    for pos, item in enumerate(value):
        if type(item) is not dict or set(item) != {"node_index", "signature"}:
            _fail(f"{name}[{pos}]", "must hold exactly node_index and signature")
        count(f"{name}[{pos}].node_index", item["node_index"])
        if type(item["signature"]) is not str or not _HEX64_RE.fullmatch(item["signature"]):
            _fail(f"{name}[{pos}].signature", "must be 128 lowercase hex characters")


def terms(name: str, value: Any) -> None:
    """A dataset's terms of use (`mutualmind.vocabulary.dataset_terms`), shape only."""
    obj(name, value)
    if set(value) != set(TERMS_FIELDS):
        _fail(name, f"must hold exactly {', '.join(TERMS_FIELDS)}")
    limit = value["min_datasets"]
    if type(limit) is not int or not MIN_DATASETS_FLOOR <= limit <= MAX_DATASETS_PER_ROUND:
        _fail(f"{name}.min_datasets", f"must be an integer from {MIN_DATASETS_FLOOR} to "
              f"{MAX_DATASETS_PER_ROUND} (a round of fewer datasets could reveal one)")
    kinds = value["model_kinds"]
    if (type(kinds) is not list or not kinds or len(set(kinds)) != len(kinds)
            or any(k not in MODEL_KINDS for k in kinds)):
        _fail(f"{name}.model_kinds", f"must be a non-empty list of distinct kinds from {MODEL_KINDS}")
    ppm(f"{name}.max_slash_rate_ppm", value["max_slash_rate_ppm"])
    count(f"{name}.min_pool_per_row", value["min_pool_per_row"])
    sponsors = value["sponsors"]
    if type(sponsors) is not list or len(sponsors) > MAX_SPONSORS:
        _fail(f"{name}.sponsors", f"must be a list of at most {MAX_SPONSORS} provider ids "
              "(empty: any sponsor)")
    if sponsors:
        id_list(f"{name}.sponsors", sponsors)


@dataclass(frozen=True)
class KindSpec:
    """The payload fields of one kind and which field names the signing party.

    `optional` fields may be absent (entries written before they existed stay valid);
    when present they are checked like the others.
    """

    fields: dict[str, Validator]
    signer_field: str | None = None  # payload field naming the provider who must sign
    parties: tuple[str, ...] = field(default=())  # fields naming parties (for filters)
    optional: dict[str, Validator] = field(default_factory=dict)


KINDS: dict[str, KindSpec] = {
    "genesis": KindSpec({"coordinator_key": hex32, "origin": text, "params": obj}),
    "node_registered": KindSpec({"node_index": count, "name": text, "signing_key": hex32}),
    "provider_registered": KindSpec(
        {"provider_id": party_id, "name": text, "public_key": hex32, "nonce": nonce},
        signer_field="provider_id", parties=("provider_id",),
    ),
    "mint": KindSpec({"to": party_id, "amount": amount, "memo": text}, parties=("to",)),
    "transfer": KindSpec(
        {"from": party_id, "to": party_id, "amount": amount, "nonce": nonce},
        signer_field="from", parties=("from", "to"),
    ),
    "dataset_registered": KindSpec(
        {
            "dataset_id": party_id, "provider_id": party_id, "rows": count, "cols": count,
            "frac_bits": frac_bits, "schema": schema, "share_commitments": hex32_list,
            "purpose": purpose, "nonce": nonce,
        },
        signer_field="provider_id", parties=("provider_id",), optional={"terms": terms},
    ),
    "dataset_terms_updated": KindSpec(
        {"dataset_id": party_id, "provider_id": party_id, "terms": terms, "nonce": nonce},
        signer_field="provider_id", parties=("provider_id",),
    ),
    "stake": KindSpec(
        {"provider_id": party_id, "dataset_id": party_id, "amount": amount, "nonce": nonce},
        signer_field="provider_id", parties=("provider_id",),
    ),
    "unstake": KindSpec(
        {"provider_id": party_id, "dataset_id": party_id, "amount": amount, "nonce": nonce},
        signer_field="provider_id", parties=("provider_id",),
    ),
    "round_opened": KindSpec(
        {
            "round_id": party_id, "sponsor": party_id, "pool": amount, "model_spec": obj,
            "validation_dataset": party_id, "datasets": id_list, "slash_rate_ppm": ppm,
            "epsilon_micro": count, "nonce": nonce,
        },
        signer_field="sponsor", parties=("sponsor",), optional={"expires_at_ms": count},
    ),
    "round_abort_requested": KindSpec(
        {"round_id": party_id, "sponsor": party_id, "reason": text, "nonce": nonce},
        signer_field="sponsor", parties=("sponsor",),
    ),
    "round_result": KindSpec(
        {
            "round_id": party_id, "job_digest": hex32, "metrics_micro": int_list,
            "contributions_micro": int_list, "attestations": attestations,
        }
    ),
    "slash": KindSpec(
        {"round_id": party_id, "dataset_id": party_id, "provider_id": party_id, "amount": amount},
        parties=("provider_id",),
    ),
    "payout": KindSpec({"round_id": party_id, "to": party_id, "amount": amount}, parties=("to",)),
    "round_closed": KindSpec({"round_id": party_id}),
    "round_aborted": KindSpec({"round_id": party_id, "reason": text}),
    "round_verified": KindSpec(
        {
            "round_id": party_id, "job_digest": hex32, "recomputed_micro": int_list,
            "max_abs_diff_micro": count, "tolerance_micro": count, "verdict": verdict,
        }
    ),
}

PROVIDER_SIGNED_KINDS = frozenset(k for k, spec in KINDS.items() if spec.signer_field)


def validate_payload(kind: str, payload: Any) -> None:
    """InvalidInput (or RuleViolation for amounts) unless `payload` fits `kind` exactly."""
    spec = KINDS.get(kind)
    if spec is None:
        raise InvalidInput(f"unknown entry kind {kind!r}; known kinds: {', '.join(KINDS)}")
    if type(payload) is not dict:
        raise InvalidInput(f"a {kind} payload must be a JSON object")
    missing = sorted(spec.fields.keys() - payload.keys())
    extra = sorted(payload.keys() - spec.fields.keys() - spec.optional.keys())
    if missing or extra:
        raise InvalidInput(f"{kind} payload: missing fields {missing}, unexpected fields {extra}")
    for name, check in (*spec.fields.items(), *spec.optional.items()):
        if name in payload:
            check(name, payload[name])


def request_message(kind: str, payload: dict[str, Any]) -> bytes:
    """The bytes a provider signs to ask for a `kind` entry with this payload."""
    return REQUEST_DOMAIN + kind.encode("ascii") + b"\n" + canonical_json(payload)


def parties_of(kind: str, payload: dict[str, Any]) -> set[str]:
    """The parties an entry concerns (for `entries(party=...)` and `ledger show`)."""
    spec = KINDS.get(kind)
    if spec is None:
        return set()
    return {payload[name] for name in spec.parties if isinstance(payload.get(name), str)}
