"""Signed request sequences like a live marketplace produces, for the benchmark and tests.

`Market` holds the private keys of simulated providers and nodes and builds correctly
signed append requests (kind, payload, provider signature) for every entry kind, so a
test or `bench/ledger.py` drives the real `Ledger` with the same bytes a provider
client would send. It only builds requests; the ledger still judges every one.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from dataclasses import dataclass, field
from typing import Any, Iterator

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mutualmind.vocabulary.attestation import attestation_message
from mutualmind.vocabulary.fixed_point import FRAC_BITS
from mutualmind.vocabulary.job_digest import job_digest
from mutualmind.vocabulary.payloads import request_message
from mutualmind.vocabulary.signing_keys import generate_signing_key, public_key_bytes

Request = tuple[str, dict[str, Any], "bytes | None"]

SCHEMA = {"columns": ["x0", "x1", "x2", "y"], "feature_columns": ["x0", "x1", "x2"], "label_column": "y"}


@dataclass
class Market:
    """Simulated parties and the requests they sign."""

    node_keys: list[Ed25519PrivateKey] = field(default_factory=list)
    provider_keys: dict[str, Ed25519PrivateKey] = field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)   # registrations made
    rounds: dict[str, dict[str, Any]] = field(default_factory=dict)     # rounds opened

    def nonce(self) -> str:
        return secrets.token_hex(16)

    def signed(self, kind: str, payload: dict[str, Any], signer: str) -> Request:
        return kind, payload, self.provider_keys[signer].sign(request_message(kind, payload))

    def register_node(self, index: int) -> Request:
        key = generate_signing_key()
        self.node_keys.append(key)
        return "node_registered", {"node_index": index, "name": f"node-{index}",
                                   "signing_key": public_key_bytes(key).hex()}, None

    def register_provider(self, provider_id: str) -> Request:
        key = generate_signing_key()
        self.provider_keys[provider_id] = key
        payload = {"provider_id": provider_id, "name": provider_id.title(),
                   "public_key": public_key_bytes(key).hex(), "nonce": self.nonce()}
        return self.signed("provider_registered", payload, provider_id)

    def mint(self, to: str, amount: int) -> Request:
        return "mint", {"to": to, "amount": amount, "memo": "faucet"}, None

    def transfer(self, sender: str, to: str, amount: int) -> Request:
        return self.signed("transfer", {"from": sender, "to": to, "amount": amount,
                                        "nonce": self.nonce()}, sender)

    def register_dataset(self, dataset_id: str, provider: str, purpose: str = "training", rows: int = 1000,
                         label_classes: int = 2) -> Request:
        commitments = [hashlib.sha256(f"{dataset_id}/{i}".encode()).hexdigest()
                       for i in range(len(self.node_keys))]
        payload = {"dataset_id": dataset_id, "provider_id": provider, "rows": rows, "cols": 4,
                   "frac_bits": FRAC_BITS, "schema": SCHEMA, "share_commitments": commitments,
                   "purpose": purpose, "column_exponents": [0] * 4, "label_classes": label_classes,
                   "nonce": self.nonce()}
        self.datasets.setdefault(dataset_id, payload)
        return self.signed("dataset_registered", payload, provider)

    def stake(self, provider: str, dataset_id: str, amount: int, kind: str = "stake") -> Request:
        return self.signed(kind, {"provider_id": provider, "dataset_id": dataset_id,
                                  "amount": amount, "nonce": self.nonce()}, provider)

    def open_round(self, round_id: str, sponsor: str, pool: int, validation: str,
                   datasets: list[str], slash_rate_ppm: int = 100_000, epsilon_micro: int = 1000,
                   model_spec: dict[str, Any] | None = None) -> Request:
        payload = {"round_id": round_id, "sponsor": sponsor, "pool": pool,
                   "model_spec": model_spec or {"kind": "logistic", "epochs": 3}, "validation_dataset": validation,
                   "datasets": datasets, "slash_rate_ppm": slash_rate_ppm,
                   "epsilon_micro": epsilon_micro, "nonce": self.nonce()}
        self.rounds.setdefault(round_id, payload)
        return self.signed("round_opened", payload, sponsor)

    def round_result(self, round_id: str, metrics: list[int],
                     copies: dict[str, list[int]] | None = None) -> Request:
        opened = self.rounds.get(round_id)
        digest = (job_digest(opened, self.datasets) if opened is not None
                  else hashlib.sha256(round_id.encode()).hexdigest())   # a round never opened
        message = attestation_message(round_id, digest, metrics, copies)
        attestations = [{"node_index": i, "signature": key.sign(message).hex()}
                        for i, key in enumerate(self.node_keys)]
        if opened is not None and opened["model_spec"].get("valuation") == "banzhaf":
            n = len(opened["datasets"])
            # log-loss: contribution = -(mean_in - mean_out); errors as signed
            return "round_result", {"round_id": round_id, "job_digest": digest, "metrics_micro": metrics,
                                    "contributions_micro": [-d for d in metrics[1:n + 1]],
                                    "errors_micro": metrics[n + 1:], "attestations": attestations}, None
        contributions = [metrics[0] - m for m in metrics[1:]]
        payload: dict[str, Any] = {"round_id": round_id, "job_digest": digest, "metrics_micro": metrics,
                                   "contributions_micro": contributions, "attestations": attestations}
        if copies is not None:
            payload["copies"] = copies
        return "round_result", payload, None


def realistic_mix(count: int, *, nodes: int = 3, providers: int = 50, seed: int = 7) -> Iterator[Request]:
    """About `count` valid requests (after a genesis): registrations, mints, transfers,
    dataset registrations, stakes and full rounds with results, slashes and payouts."""
    rng = random.Random(seed)
    market = Market()
    produced = 0
    for i in range(nodes):
        yield market.register_node(i)
    names = [f"provider-{i}" for i in range(providers)]
    balances = dict.fromkeys(names, 0)
    for name in names:
        yield market.register_provider(name)
        yield market.mint(name, 1_000_000)
        balances[name] += 1_000_000
    produced = nodes + 2 * providers
    datasets: dict[str, str] = {}
    round_no = 0
    while produced < count:
        roll = rng.random()
        if roll < 0.45:
            a, b = rng.sample(names, 2)
            amount = rng.randint(1, 100)
            if balances[a] >= amount:
                balances[a] -= amount
                balances[b] += amount
                yield market.transfer(a, b, amount)
                produced += 1
        elif roll < 0.6:
            name = rng.choice(names)
            yield market.mint(name, rng.randint(1, 10_000))
            produced += 1
        elif roll < 0.7 or len(datasets) < 4:
            owner = rng.choice(names)
            dataset_id = f"ds-{len(datasets)}"
            datasets[dataset_id] = owner
            yield market.register_dataset(dataset_id, owner)
            balances[owner] -= 500
            yield market.stake(owner, dataset_id, 500)
            produced += 2
        elif roll < 0.95:
            dataset_id = rng.choice(list(datasets))
            owner = datasets[dataset_id]
            if balances[owner] >= 10:
                balances[owner] -= 10
                yield market.stake(owner, dataset_id, 10)
                produced += 1
        else:
            round_no += 1
            round_id = f"round-{round_no}"
            sponsor = rng.choice(names)
            members = rng.sample(list(datasets), 3)
            validation = f"val-{round_no}"
            yield market.register_dataset(validation, sponsor, "validation")
            pool = 3000
            balances[sponsor] -= pool
            yield market.open_round(round_id, sponsor, pool, validation, members)
            metrics = [900_000, 880_000, 905_000, 890_000]  # member 1 hurt the model
            yield market.round_result(round_id, metrics)
            hurt = members[1]
            yield "slash", {"round_id": round_id, "dataset_id": hurt,
                            "provider_id": datasets[hurt], "amount": 10}, None
            for member, share in ((members[0], 2005), (members[2], 1005)):
                yield "payout", {"round_id": round_id, "to": datasets[member], "amount": share}, None
                balances[datasets[member]] += share
            yield "round_closed", {"round_id": round_id}, None
            produced += 7
