"""Entry kinds, their payloads and who signs them: the requests every role builds or checks.

The ledger (`ledger/entries.py`) stores and hashes entries of these kinds; providers sign
`request_message(kind, payload)` on their own machine and nodes check the same bytes.

Every kind below lists its payload fields (exactly these keys, no others) and the rules
`state.py` enforces when it is appended or replayed. Amounts are integers in token units,
metrics and contributions integers in millionths, nonces strings (clients use
`secrets.token_hex(16)`); a nonce is single-use per signing party.

| kind | payload | signed by | rules |
| --- | --- | --- | --- |
| genesis | coordinator_key (hex), origin, params {} (optional workload_rules: the version of the workload rule round_opened obeys, `workload.check_round_workload`; absent = 1) | coordinator | entry 0 only |
| node_registered | node_index, name, signing_key (hex) | coordinator | index unused, key unused |
| provider_registered | provider_id, name, public_key (hex), nonce | the new key itself | id unused |
| mint | to, amount, memo | coordinator | `to` registered; amount > 0 |
| transfer | from, to, amount, nonce | `from` | both registered; amount <= balance |
| dataset_registered | dataset_id, provider_id, rows, cols, frac_bits, schema {columns, feature_columns, label_column}, share_commitments [hex per node], purpose, column_exponents [int per column], label_classes, nonce, optional terms {min_datasets, model_kinds, max_slash_rate_ppm, min_pool_per_row, sponsors} | provider_id | id unused; one commitment per registered node; schema and shape per `mutualmind.vocabulary.dataset.check_registration`; exponents and label facts as `column_scale` admits; no terms = `dataset_terms.DEFAULT_TERMS` |
| dataset_terms_updated | dataset_id, provider_id, terms {as above}, nonce | provider_id | provider owns the dataset; binds rounds opened after it (open rounds keep the terms they were opened under) |
| stake / unstake | provider_id, dataset_id, amount, nonce | provider_id | provider owns the dataset; stake <= balance; unstake <= stake and not while in an open round |
| round_opened | round_id, sponsor, pool, model_spec {}, validation_dataset, datasets [], slash_rate_ppm, epsilon_micro, nonce, optional expires_at_ms | sponsor | pool <= sponsor's balance (locked); datasets staked, training, same schema as the validation set; model_spec parses with the workers' `parse_model_spec` and its work fits `workload.check_round_workload` (version `workload_rules`); every dataset's terms allow the round (`dataset_terms.check_round`); no expires_at_ms = the coordinator's default TTL from the entry's time |
| round_result | round_id, job_digest (hex), metrics_micro [n+1; Banzhaf: 2n+1], contributions_micro [n], attestations [{node_index, signature}], errors_micro [n] (Banzhaf rounds only), optional copies {counts [n], samples [n]} | every node (attestation, over copies and beacon too) | round open; job_digest = `mutualmind.vocabulary.job_digest` of the round_opened payload and its datasets; one valid attestation per registered node; a Banzhaf round's contributions and errors are those `valuation.banzhaf_result_micro` derives from its signed values; copies (copy detection, issue 13) one count and sample size per dataset, count <= samples; beacon (`vocabulary.beacon`, 32 random bytes hex: the seed of the copy sample and of Banzhaf's sampled coalitions) signed by every node |
| slash | round_id, dataset_id, provider_id, amount | coordinator | after the result; contribution + K * error < -epsilon (error 0 but for Banzhaf MSR), or the result's copies mark the dataset a copy (`copy_rule.is_copy`); amount <= stake; once per dataset; stake -> pool |
| payout | round_id, to, amount | coordinator | after the result; amount <= pool; pool -> balance; not to a provider (other than the sponsor) whose every dataset in the round the result's copies mark a copy; in a Banzhaf round only to the sponsor or a provider with a dataset whose contribution - K * error > epsilon |
| round_closed | round_id | coordinator | after the result; pool exactly 0 |
| round_abort_requested | round_id, sponsor, reason, nonce | sponsor | round open; the round's own sponsor; moves nothing (the coordinator's round_aborted follows in the same group commit) |
| round_aborted | round_id, reason | coordinator | round not closed; pool -> sponsor, stakes unlock (on restart, sponsor or admin abort, expiry, K failed runs) |
| round_verified | round_id, job_digest, recomputed_micro [n], max_abs_diff_micro, tolerance_micro, verdict, optional recomputed_copies {counts [n], samples [n]}, optional beacon, optional flip_band_micro | coordinator | round closed; moves nothing (records an `admin round verify` re-run); with recomputed_copies the verdict agrees only if they mark the same datasets copies as the result; optional beacon: the re-run's, equal to the result's; the verdict disagrees when a contribution is beyond +band in one run and below -band in the other (band: max(epsilon, flip_band_micro), epsilon alone without it) |
| tournament_opened | tournament_id, sponsor, task {label_kind, metric}, pool, threshold_micro, deadline_ms, slash_rate_ppm, weight_cap_ppm, epsilon_micro, resolution_publisher, datasets [eligible], nonce | sponsor | the model market: every tournament kind and its rules are in `ledger.tournament_rules` (payload builders: `mutualmind.vocabulary.tournament`) |
| model_submitted | tournament_id, model_id, modeler, recipe {}, datasets [], stake, kept_share_bps, nonce | modeler | (as above) |
| models_frozen | tournament_id, job_digest, model_commitments [hex per model], attestations | every node | (as above) |
| resolution_committed | tournament_id, publisher, dataset_id, nonce | publisher | (as above) |
| tournament_result | tournament_id, job_digest, metamodel_metric_micro, contributions_micro [per model], dataset_contributions_micro [[per dataset] per model], attestations | every node | (as above) |
| model_dataset_slashed, model_slashed, tournament_refund, model_rewarded, model_payout, model_stake_returned, tournament_closed | tournament_id and the movement's parties and amount | coordinator | exactly the entries `tournament_settlement.settlement_entries` computes, in its order |
| tournament_aborted | tournament_id, reason | coordinator | before a result only; then exactly `tournament_settlement.abort_entries` (pool and stakes back) |
| tournament_verified | tournament_id, job_digest, metamodel_metric_micro, contributions_micro, dataset_contributions_micro (the re-run's), max_abs_diff_micro, tolerance_micro, verdict; optional flip_band_micro | coordinator | a result recorded; moves nothing (records an `admin tournament verify` re-run); job_digest the result's; the difference and the verdict are what `tournament_verdict.compare` gives for these numbers against the result's |
| model_units_issued | model_id (= source_id), source_kind ("round" or "tournament"), source_id, holders [{to, units}] | coordinator | a mutually owned model (issue 16): every ownership kind and its rules are in `ledger.ownership_rules` (arithmetic: `mutualmind.vocabulary.ownership`); round_opened's optional inference_price_per_1000_rows is the model's price at open |
| model_units_transferred | model_id, from, to, units, nonce | from | (as above) |
| inference_ordered | order_id, model_id, user, rows, fee, issued_at_ms, nonce | user | (as above) |
| inference_delivered | order_id, model_id, user, rows, attestations | every node | (as above) |
| inference_failed | order_id, reason | coordinator | (as above) |
| dividend_paid | model_id, amount, payments [{to, amount}] | coordinator | (as above) |
| model_price_changed | model_id, price_per_1000_rows, nonce, signatures [{owner, signature}] | owners holding > half of the units | (as above) |

Bounds (so no entry grows without limit and `ListEntries` can always return it): names
<= 128 characters (no control characters), free text <= 1024, a schema <= 4096 columns,
a round <= 256 datasets, share commitments and attestations <= 64 (nodes), integer
lists hold int64 values, and the whole canonical payload JSON <= 256 KiB
(`MAX_PAYLOAD_BYTES`: a 4096-column schema lists each name twice). Amounts are below
2^62 and the total minted supply never exceeds `MAX_SUPPLY` = 2^62 - 1, so every
balance, stake, pool and any sum of them fits a signed 64-bit integer (SQLite, protobuf
int64, numpy) with room to spare.

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
from mutualmind.vocabulary.column_scale import (
    MAX_ABS_EXPONENT,
    MAX_CLASSES,
    MIN_EXPONENT,
)
from mutualmind.vocabulary.copy_rule import check_copies
from mutualmind.vocabulary.dataset import PURPOSES, check_registration
from mutualmind.vocabulary.model_spec import METRICS, MODEL_KINDS, TASKS
from mutualmind.vocabulary.states import EntryKind

REQUEST_DOMAIN = b"mutualmind/request/v1\n"
AMOUNT_LIMIT = 2**62
MAX_SUPPLY = AMOUNT_LIMIT - 1   # minted tokens in total; see the module docstring
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
PPM = 1_000_000
MAX_NAME_CHARS = 128
MAX_TEXT_CHARS = 1024
MAX_COLUMNS = 4096
MAX_ROUND_DATASETS = 256
MAX_NODES = 64
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_TOURNAMENT_MODELS = 64
BPS = 10_000
MAX_MODEL_HOLDERS = 1024      # unit holders of one model (a dividend lists each: < 256 KiB)

_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
_HEX32_RE = re.compile(r"[0-9a-f]{64}")
_HEX64_RE = re.compile(r"[0-9a-f]{128}")
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{8,128}")
# C0/C1 control characters (terminal escapes, NUL, newlines) and lone surrogates
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

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
    if type(value) is not str or len(value) > MAX_TEXT_CHARS:
        _fail(name, f"must be a string of at most {MAX_TEXT_CHARS} characters")


def display_name(name: str, value: Any) -> None:
    """A name people read (column, node or provider name): 1-128 characters, printable."""
    if type(value) is not str or not 0 < len(value) <= MAX_NAME_CHARS or _CONTROL_RE.search(value):
        _fail(name, f"must be a name of 1-{MAX_NAME_CHARS} characters without control characters")


def _bounded_list(name: str, value: Any, limit: int, what: str) -> None:
    if type(value) is not list or len(value) > limit:
        _fail(name, f"must be a list of at most {limit} {what}")


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
    _bounded_list(name, value, MAX_ROUND_DATASETS + 1, "integers")
    if any(type(v) is not int or not INT64_MIN <= v <= INT64_MAX for v in value):
        _fail(name, "must be a list of 64-bit signed integers")


def id_list(name: str, value: Any) -> None:
    _bounded_list(name, value, MAX_ROUND_DATASETS, "ids")
    if not value:
        _fail(name, "must be a non-empty list of ids")
    for pos, item in enumerate(value):
        party_id(f"{name}[{pos}]", item)
    if len(set(value)) != len(value):
        _fail(name, "must not name an id twice")


def hex32_list(name: str, value: Any) -> None:
    _bounded_list(name, value, MAX_NODES, "hex hashes")
    if not value:
        _fail(name, "must be a non-empty list of hex hashes")
    for pos, item in enumerate(value):
        hex32(f"{name}[{pos}]", item)


def purpose(name: str, value: Any) -> None:
    if value not in PURPOSES:
        _fail(name, "must be 'training', 'validation' or 'inference'")


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
        _bounded_list(f"{name}.{key}", column_names, MAX_COLUMNS, "column names")
        for pos, column in enumerate(column_names):
            display_name(f"{name}.{key}[{pos}]", column)
    if value["label_column"] != "":
        display_name(f"{name}.label_column", value["label_column"])


def _registration(payload: dict[str, Any]) -> None:
    """The schema and shape rules of `mutualmind.vocabulary.dataset`, the one owner."""
    try:
        check_registration(payload["rows"], payload["cols"], payload["schema"], payload["purpose"])
    except InvalidInput as err:
        raise InvalidInput(f"dataset_registered payload: {err}") from None
    if len(payload["column_exponents"]) != payload["cols"]:
        raise InvalidInput(f"dataset_registered payload: column_exponents must give one "
                           f"exponent per column ({payload['cols']})")


def exponent_list(name: str, value: Any) -> None:
    if type(value) is not list or any(type(v) is not int for v in value):
        _fail(name, "must be a list of integers (one power-of-two exponent per column)")
    bad = [v for v in value if not MIN_EXPONENT <= v <= MAX_ABS_EXPONENT]
    if bad:
        _fail(name, f"must hold exponents from {MIN_EXPONENT} to {MAX_ABS_EXPONENT}, got {bad[:3]}")


def label_classes(name: str, value: Any) -> None:
    if type(value) is not int or not (value == 0 or 2 <= value <= MAX_CLASSES):
        _fail(name, f"must be 0 (a real-valued target) or a class count from 2 to {MAX_CLASSES}")


def copies_field(name: str, value: Any) -> None:
    """{counts, samples}: copy detection's per-dataset counts (the state checks their
    length against the round's datasets)."""
    counts = value.get("counts") if type(value) is dict else None
    check_copies(value, len(counts) if type(counts) is list else -1)
    if len(counts) > MAX_ROUND_DATASETS:  # type: ignore[arg-type]
        _fail(name, f"may list at most {MAX_ROUND_DATASETS} datasets")


def attestations(name: str, value: Any) -> None:
    _bounded_list(name, value, MAX_NODES, "attestations")
    if not value:
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


def int64(name: str, value: Any) -> None:
    if type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
        _fail(name, "must be a 64-bit signed integer")


def bps(name: str, value: Any) -> None:
    if type(value) is not int or not 0 <= value <= BPS:
        _fail(name, f"must be an integer from 0 to {BPS} (basis points)")


def task(name: str, value: Any) -> None:
    """A tournament's task: the label kind models predict and the metric that judges them."""
    obj(name, value)
    if set(value) != {"label_kind", "metric"}:
        _fail(name, "must hold exactly label_kind and metric")
    if value["label_kind"] not in TASKS:
        _fail(f"{name}.label_kind", f"must be one of {TASKS}")
    if value["metric"] not in METRICS:
        _fail(f"{name}.metric", f"must be one of {METRICS}")
    if (value["label_kind"] == "regression") != (value["metric"] == "mse"):
        _fail(name, "pairs regression with mse and classification with log_loss or accuracy")


def model_commitments(name: str, value: Any) -> None:
    _bounded_list(name, value, MAX_TOURNAMENT_MODELS, "hex hashes (one per model)")
    for pos, item in enumerate(value):
        hex32(f"{name}[{pos}]", item)


def per_model_ints(name: str, value: Any) -> None:
    _bounded_list(name, value, MAX_TOURNAMENT_MODELS, "integers (one per model)")
    int_list(name, value)


def per_model_int_lists(name: str, value: Any) -> None:
    _bounded_list(name, value, MAX_TOURNAMENT_MODELS, "lists (one per model)")
    for pos, item in enumerate(value):
        int_list(f"{name}[{pos}]", item)
def _party_amounts(name: str, value: Any, amount_field: str) -> None:
    """[{to, <amount_field>}]: distinct parties, positive integers, ascending ids."""
    _bounded_list(name, value, MAX_MODEL_HOLDERS, f"{{to, {amount_field}}}")
    if not value:
        _fail(name, f"must be a non-empty list of {{to, {amount_field}}}")
    for pos, item in enumerate(value):
        if type(item) is not dict or set(item) != {"to", amount_field}:
            _fail(f"{name}[{pos}]", f"must hold exactly to and {amount_field}")
        party_id(f"{name}[{pos}].to", item["to"])
        amount(f"{name}[{pos}].{amount_field}", item[amount_field])
    names = [item["to"] for item in value]
    if names != sorted(set(names)):
        _fail(name, "must list each party once, in ascending id order")


def unit_holders(name: str, value: Any) -> None:
    _party_amounts(name, value, "units")


def payments(name: str, value: Any) -> None:
    _party_amounts(name, value, "amount")


def source_kind(name: str, value: Any) -> None:
    if value not in ("round", "tournament"):  # a round's model, a tournament's metamodel
        _fail(name, "must be 'round' or 'tournament'")


def owner_signatures(name: str, value: Any) -> None:
    _bounded_list(name, value, MAX_MODEL_HOLDERS, "owner signatures")
    if not value:
        _fail(name, "must be a non-empty list of {owner, signature}")
    for pos, item in enumerate(value):
        if type(item) is not dict or set(item) != {"owner", "signature"}:
            _fail(f"{name}[{pos}]", "must hold exactly owner and signature")
        party_id(f"{name}[{pos}].owner", item["owner"])
        if type(item["signature"]) is not str or not _HEX64_RE.fullmatch(item["signature"]):
            _fail(f"{name}[{pos}].signature", "must be 128 lowercase hex characters")
    owners = [item["owner"] for item in value]
    if len(set(owners)) != len(owners):
        _fail(name, "must name each owner once")


@dataclass(frozen=True)
class KindSpec:
    """The payload fields of one kind and which field names the signing party.

    `optional` fields may be absent (entries written before they existed stay valid);
    when present they are checked like the others.
    """

    fields: dict[str, Validator]
    signer_field: str | None = None  # payload field naming the provider who must sign
    whole: Callable[[dict[str, Any]], None] | None = None  # rules across fields, after each field's
    parties: tuple[str, ...] = field(default=())  # fields naming parties (for filters)
    optional: dict[str, Validator] = field(default_factory=dict)
    listed_parties: tuple[tuple[str, str], ...] = ()  # (list field, key naming a party) per item


KINDS: dict[str, KindSpec] = {  # keyed by EntryKind members, looked up by any kind string
    EntryKind.GENESIS: KindSpec({"coordinator_key": hex32, "origin": text, "params": obj}),
    EntryKind.NODE_REGISTERED: KindSpec({"node_index": count, "name": display_name, "signing_key": hex32}),
    EntryKind.PROVIDER_REGISTERED: KindSpec(
        {"provider_id": party_id, "name": display_name, "public_key": hex32, "nonce": nonce},
        signer_field="provider_id", parties=("provider_id",),
    ),
    EntryKind.MINT: KindSpec({"to": party_id, "amount": amount, "memo": text}, parties=("to",)),
    EntryKind.TRANSFER: KindSpec(
        {"from": party_id, "to": party_id, "amount": amount, "nonce": nonce},
        signer_field="from", parties=("from", "to"),
    ),
    EntryKind.DATASET_REGISTERED: KindSpec(
        {
            "dataset_id": party_id, "provider_id": party_id, "rows": count, "cols": count,
            "frac_bits": frac_bits, "schema": schema, "share_commitments": hex32_list,
            "purpose": purpose, "column_exponents": exponent_list, "label_classes": label_classes,
            "nonce": nonce,
        },
        signer_field="provider_id", whole=_registration, parties=("provider_id",),
        optional={"terms": terms},
    ),
    EntryKind.DATASET_TERMS_UPDATED: KindSpec(
        {"dataset_id": party_id, "provider_id": party_id, "terms": terms, "nonce": nonce},
        signer_field="provider_id", parties=("provider_id",),
    ),
    EntryKind.STAKE: KindSpec(
        {"provider_id": party_id, "dataset_id": party_id, "amount": amount, "nonce": nonce},
        signer_field="provider_id", parties=("provider_id",),
    ),
    EntryKind.UNSTAKE: KindSpec(
        {"provider_id": party_id, "dataset_id": party_id, "amount": amount, "nonce": nonce},
        signer_field="provider_id", parties=("provider_id",),
    ),
    EntryKind.ROUND_OPENED: KindSpec(
        {
            "round_id": party_id, "sponsor": party_id, "pool": amount, "model_spec": obj,
            "validation_dataset": party_id, "datasets": id_list, "slash_rate_ppm": ppm,
            "epsilon_micro": count, "nonce": nonce,
        },
        signer_field="sponsor", parties=("sponsor",),
        optional={"expires_at_ms": count, "inference_price_per_1000_rows": amount},
    ),
    EntryKind.ROUND_ABORT_REQUESTED: KindSpec(
        {"round_id": party_id, "sponsor": party_id, "reason": text, "nonce": nonce},
        signer_field="sponsor", parties=("sponsor",),
    ),
    EntryKind.ROUND_RESULT: KindSpec(
        {
            "round_id": party_id, "job_digest": hex32, "metrics_micro": int_list,
            "contributions_micro": int_list, "attestations": attestations,
        },
        # errors: Banzhaf rounds only (`valuation`); beacon: the job's random seed (`beacon`)
        optional={"errors_micro": int_list, "copies": copies_field, "beacon": hex32},
    ),
    EntryKind.SLASH: KindSpec(
        {"round_id": party_id, "dataset_id": party_id, "provider_id": party_id, "amount": amount},
        parties=("provider_id",),
    ),
    EntryKind.PAYOUT: KindSpec({"round_id": party_id, "to": party_id, "amount": amount}, parties=("to",)),
    EntryKind.ROUND_CLOSED: KindSpec({"round_id": party_id}),
    EntryKind.ROUND_ABORTED: KindSpec({"round_id": party_id, "reason": text}),
    EntryKind.ROUND_VERIFIED: KindSpec(
        {
            "round_id": party_id, "job_digest": hex32, "recomputed_micro": int_list,
            "max_abs_diff_micro": count, "tolerance_micro": count, "verdict": verdict,
        },
        optional={"recomputed_copies": copies_field, "beacon": hex32, "flip_band_micro": count},
    ),
    # the model market (issue 15); rules in ledger.tournament_rules
    EntryKind.TOURNAMENT_OPENED: KindSpec(
        {
            "tournament_id": party_id, "sponsor": party_id, "task": task, "pool": amount,
            "threshold_micro": int64, "deadline_ms": count, "slash_rate_ppm": ppm,
            "weight_cap_ppm": ppm, "epsilon_micro": count, "resolution_publisher": party_id,
            "datasets": id_list, "nonce": nonce,
        },
        signer_field="sponsor", parties=("sponsor",),
    ),
    EntryKind.MODEL_SUBMITTED: KindSpec(
        {
            "tournament_id": party_id, "model_id": party_id, "modeler": party_id, "recipe": obj,
            "datasets": id_list, "stake": amount, "kept_share_bps": bps, "nonce": nonce,
        },
        signer_field="modeler", parties=("modeler",),
    ),
    EntryKind.MODELS_FROZEN: KindSpec(
        {"tournament_id": party_id, "job_digest": hex32, "model_commitments": model_commitments,
         "attestations": attestations}
    ),
    EntryKind.RESOLUTION_COMMITTED: KindSpec(
        {"tournament_id": party_id, "publisher": party_id, "dataset_id": party_id, "nonce": nonce},
        signer_field="publisher", parties=("publisher",),
    ),
    EntryKind.TOURNAMENT_RESULT: KindSpec(
        {
            "tournament_id": party_id, "job_digest": hex32, "metamodel_metric_micro": int64,
            "contributions_micro": per_model_ints,
            "dataset_contributions_micro": per_model_int_lists, "attestations": attestations,
        }
    ),
    EntryKind.MODEL_DATASET_SLASHED: KindSpec(
        {"tournament_id": party_id, "model_id": party_id, "dataset_id": party_id,
         "provider_id": party_id, "amount": amount}, parties=("provider_id",),
    ),
    EntryKind.MODEL_SLASHED: KindSpec(
        {"tournament_id": party_id, "model_id": party_id, "modeler": party_id, "amount": amount},
        parties=("modeler",),
    ),
    EntryKind.TOURNAMENT_REFUND: KindSpec(
        {"tournament_id": party_id, "sponsor": party_id, "amount": amount}, parties=("sponsor",),
    ),
    EntryKind.MODEL_REWARDED: KindSpec(
        {"tournament_id": party_id, "model_id": party_id, "amount": amount},
    ),
    EntryKind.MODEL_PAYOUT: KindSpec(
        {"tournament_id": party_id, "model_id": party_id, "to": party_id, "amount": amount},
        parties=("to",), optional={"dataset_id": party_id},
    ),
    EntryKind.MODEL_STAKE_RETURNED: KindSpec(
        {"tournament_id": party_id, "model_id": party_id, "modeler": party_id, "amount": amount},
        parties=("modeler",),
    ),
    EntryKind.TOURNAMENT_CLOSED: KindSpec({"tournament_id": party_id}),
    EntryKind.TOURNAMENT_ABORTED: KindSpec({"tournament_id": party_id, "reason": text}),
    EntryKind.TOURNAMENT_VERIFIED: KindSpec(
        {
            "tournament_id": party_id, "job_digest": hex32, "metamodel_metric_micro": int64,
            "contributions_micro": per_model_ints, "dataset_contributions_micro": per_model_int_lists,
            "max_abs_diff_micro": count, "tolerance_micro": count, "verdict": verdict,
        },
        optional={"flip_band_micro": count},   # absent before it was recorded: the epsilon
    ),
    # a mutually owned model (issue 16); rules in ledger.ownership_rules
    EntryKind.MODEL_UNITS_ISSUED: KindSpec(
        {"model_id": party_id, "source_kind": source_kind, "source_id": party_id,
         "holders": unit_holders}, listed_parties=(("holders", "to"),),
    ),
    EntryKind.MODEL_UNITS_TRANSFERRED: KindSpec(
        {"model_id": party_id, "from": party_id, "to": party_id, "units": amount, "nonce": nonce},
        signer_field="from", parties=("from", "to"),
    ),
    EntryKind.INFERENCE_ORDERED: KindSpec(
        {"order_id": party_id, "model_id": party_id, "user": party_id, "rows": amount,
         "fee": amount, "issued_at_ms": count, "nonce": nonce},
        signer_field="user", parties=("user",),
    ),
    EntryKind.INFERENCE_DELIVERED: KindSpec(
        {"order_id": party_id, "model_id": party_id, "user": party_id, "rows": amount,
         "attestations": attestations}, parties=("user",),
    ),
    EntryKind.INFERENCE_FAILED: KindSpec({"order_id": party_id, "reason": text}),
    EntryKind.DIVIDEND_PAID: KindSpec(
        {"model_id": party_id, "amount": amount, "payments": payments},
        listed_parties=(("payments", "to"),),
    ),
    EntryKind.MODEL_PRICE_CHANGED: KindSpec(
        {"model_id": party_id, "price_per_1000_rows": amount, "nonce": nonce,
         "signatures": owner_signatures}, listed_parties=(("signatures", "owner"),),
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
    if spec.whole is not None:
        spec.whole(payload)


def check_payload_size(kind: str, payload_json: bytes) -> None:
    """InvalidInput if an entry's canonical payload JSON is above MAX_PAYLOAD_BYTES."""
    if len(payload_json) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(f"a {kind} payload is {len(payload_json)} bytes of canonical JSON, "
                           f"above the limit of {MAX_PAYLOAD_BYTES}; shorten its names or lists")


def request_message(kind: str, payload: dict[str, Any]) -> bytes:
    """The bytes a provider signs to ask for a `kind` entry with this payload."""
    return REQUEST_DOMAIN + kind.encode("ascii") + b"\n" + canonical_json(payload)


def parties_of(kind: str, payload: dict[str, Any]) -> set[str]:
    """The parties an entry concerns (for `entries(party=...)` and `ledger show`)."""
    spec = KINDS.get(kind)
    if spec is None:
        return set()
    found = {payload[name] for name in spec.parties if isinstance(payload.get(name), str)}
    for name, key in spec.listed_parties:
        items = payload.get(name)
        if isinstance(items, list):
            found.update(i[key] for i in items if isinstance(i, dict) and isinstance(i.get(key), str))
    return found
