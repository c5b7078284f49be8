"""The sponsor collects a closed round's model: every node's share, checked, added up.

The trained model stays secret-shared on the nodes (issue 4); only the sponsor may fetch
the shares (each node checks the sponsor's signed request). This module asks the
coordinator for the round (it must be closed, and this key's provider its sponsor),
fetches every node's share concurrently (`provider.client.fetch_model_share`, receipts
checked with the nodes' keys from the cluster manifest), reconstructs the weights in
Z/2^64 (`mutualmind.vocabulary.model_file.reconstruct`) and writes a plain JSON model: the
spec, the feature columns of the validation set, the weights as lists and the
normalisation statistics, plus each node's signed receipt as provenance. The file is
written atomically, so a failed collection leaves nothing behind.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mutualmind.errors import (
    IntegrityError,
    InvalidInput,
    PermissionDenied,
    RuleViolation,
)
from mutualmind.transport.atomic_file import write_atomic
from mutualmind.vocabulary.model_file import (
    check_released,
    predict,
    read_share,
    reconstruct,
)
from mutualmind.vocabulary.model_spec import ModelSpec, parse_model_spec
from mutualmind.vocabulary.states import RoundStatus
from proto import market_pb2
from provider.client import Channel, ModelShare, fetch_model_share, market_call, on_every_node

MODEL_FORMAT = "mutualmind-model/v1"
# tensors that undo the providers' scaling rather than compute the model
NORMALISATION = ("normalise_mean", "normalise_scale", "label_mean", "label_scale")


@dataclass(frozen=True)
class CollectedModel:
    """A reconstructed model and where it came from."""

    round_id: str
    sponsor_id: str
    job_digest: str
    spec: ModelSpec
    feature_columns: list[str]
    label_column: str
    tensors: dict[str, np.ndarray]
    shares: list[ModelShare]

    def document(self) -> dict[str, Any]:
        """The JSON model file's content (weights as nested lists, no pickle anywhere)."""
        return {
            "format": MODEL_FORMAT,
            "round_id": self.round_id,
            "sponsor": self.sponsor_id,
            "job_digest": self.job_digest,
            "model_spec": asdict(self.spec),
            "feature_columns": self.feature_columns,
            "label_column": self.label_column,
            **released_parts(self.tensors, self.shares),
        }


def released_parts(tensors: dict[str, np.ndarray], shares: Sequence[ModelShare]) -> dict[str, Any]:
    """A model file's weights, normalisation and the nodes' signed receipts (provenance)."""
    return {
        "weights": {n: t.tolist() for n, t in tensors.items() if n not in NORMALISATION},
        "normalisation": {n: t.tolist() for n, t in tensors.items() if n in NORMALISATION},
        "node_receipts": [{"node_index": s.node_index, "receipt": json.loads(s.receipt_json),
                           "signature": s.signature.hex()} for s in shares],
    }


def round_for_collection(market: Channel, round_id: str, sponsor_id: str) -> market_pb2.RoundView:
    """The round, if `sponsor_id` may collect its model now (clear refusals otherwise)."""
    view = market_call(market, "GetRound", market_pb2.GetRoundRequest(round_id=round_id))
    if view.sponsor != sponsor_id:
        raise PermissionDenied(f"round {round_id!r} was sponsored by {view.sponsor!r}, not "
                               f"{sponsor_id!r}; only its sponsor can collect the model")
    if view.status != RoundStatus.CLOSED or not view.job_digest:
        raise RuleViolation("round_not_closed", f"round {round_id!r} is {view.status}; collect its "
                            "model once it has closed with an accepted result")
    return view


def collect_model(
    market: Channel,
    node_channels: Sequence[Channel],
    key: Ed25519PrivateKey,
    sponsor_id: str,
    round_id: str,
    node_public_keys: Sequence[bytes],
) -> CollectedModel:
    """Fetch every node's share at once, check each receipt, reconstruct the model."""
    if len(node_channels) != len(node_public_keys) or len(node_channels) < 2:
        raise InvalidInput(f"give every node of the cluster (at least 2), in index order: got "
                           f"{len(node_channels)} addresses for {len(node_public_keys)} node keys")
    view = round_for_collection(market, round_id, sponsor_id)
    spec = parse_model_spec(view.model_spec_json)
    validation = market_call(market, "GetDataset",
                             market_pb2.GetDatasetRequest(dataset_id=view.validation_dataset))
    schema = validation.registration.schema

    def one(i: int) -> ModelShare:
        return fetch_model_share(node_channels[i], key, sponsor_id, round_id, i,
                                 node_public_key=node_public_keys[i], job_digest=view.job_digest)

    shares = on_every_node(len(node_channels), one, name="collect")
    if any(s.manifest != shares[0].manifest for s in shares[1:]):
        raise IntegrityError("the nodes describe their model shares differently; they are not "
                             "shares of one model")
    check_released(shares[0].manifest)
    tensors = reconstruct([read_share(s.data, s.manifest) for s in shares])
    return CollectedModel(round_id=round_id, sponsor_id=sponsor_id, job_digest=view.job_digest,
                          spec=spec, feature_columns=list(schema.feature_columns),
                          label_column=schema.label_column, tensors=tensors, shares=shares)


def write_model(path: Path, model: CollectedModel) -> None:
    """Write the JSON model atomically (mode 0600: the model is the sponsor's alone)."""
    text = json.dumps(model.document(), indent=1, sort_keys=True)
    write_atomic(Path(path), text.encode("utf-8"), mode=0o600)


def evaluate(model: CollectedModel, features: np.ndarray, labels: np.ndarray) -> tuple[str, float]:
    """("accuracy", share of rows right) for a classifier, ("mse", mean squared error) else."""
    predicted = predict(model.tensors, model.spec, features)
    if model.spec.task == "regression":
        return "mse", float(np.mean((predicted - labels) ** 2))
    return "accuracy", float(np.mean(predicted == labels))
