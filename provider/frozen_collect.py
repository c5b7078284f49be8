"""A modeler collects its frozen tournament model: every node's share, checked, added up.

After a tournament is settled (closed) the modeler who submitted a model may take the
full model it staked (not the per-dataset variants). This module reads the tournament
(the model's frozen commitment from `models_frozen`), asks every node at once with a
freshly signed request per node (`provider.client.fetch_model_share` with a model id),
checks each node's signed receipt, recomputes the ledger's commitment from the file
digests the nodes signed (`vocabulary.tournament_collect.check_frozen_shares`),
reconstructs the weights in Z/2^64 and folds the public column exponents back, so the
model predicts on raw rows. The JSON file is written atomically (mode 0600).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mutualmind.errors import IntegrityError, InvalidInput, NotFound, RuleViolation
from mutualmind.transport.atomic_file import write_atomic
from mutualmind.vocabulary.model_file import check_released, read_share, reconstruct
from mutualmind.vocabulary.model_spec import ModelSpec, parse_model_spec
from mutualmind.vocabulary.states import TournamentStatus
from mutualmind.vocabulary.tournament_collect import check_frozen_shares, unscaled
from proto import market_pb2
from provider.client import Channel, ModelShare, fetch_model_share, market_call, on_every_node
from provider.model_collect import released_parts

FROZEN_MODEL_FORMAT = "mutualmind-frozen-model/v1"


@dataclass(frozen=True)
class FrozenModel:
    """A modeler's reconstructed tournament model and where it came from."""

    tournament_id: str
    model_id: str
    modeler: str
    commitment: str
    spec: ModelSpec
    datasets: list[str]
    feature_columns: list[str]
    label_column: str
    tensors: dict[str, np.ndarray]
    shares: list[ModelShare]

    def document(self) -> dict[str, Any]:
        """The JSON model file's content (weights as nested lists, no pickle anywhere)."""
        return {
            "format": FROZEN_MODEL_FORMAT, "tournament_id": self.tournament_id, "model_id": self.model_id,
            "modeler": self.modeler, "commitment": self.commitment, "model_spec": asdict(self.spec),
            "datasets": self.datasets, "feature_columns": self.feature_columns, "label_column": self.label_column,
            **released_parts(self.tensors, self.shares),
        }


def frozen_commitment(market: Channel, tournament_id: str, model_id: str, modeler: str) -> str:
    """The model's frozen commitment, if `modeler` may collect it now (clear refusals otherwise)."""
    view = market_call(market, "GetTournament", market_pb2.GetTournamentRequest(tournament_id=tournament_id))
    models = {m["model_id"]: m for m in json.loads(view.view_json)["models"]}
    if model_id not in models:
        raise NotFound(f"tournament {tournament_id!r} has no model {model_id!r}; see `mutualmind modeler show`")
    if models[model_id]["modeler"] != modeler:
        raise InvalidInput(f"model {model_id!r} was submitted by {models[model_id]['modeler']!r}, not "
                           f"{modeler!r}; only its modeler can collect it")
    if view.status != TournamentStatus.CLOSED or not models[model_id]["commitment"]:
        raise RuleViolation("tournament_not_closed", f"tournament {tournament_id!r} is {view.status}; "
                            "collect your model once the tournament is settled (closed)")
    return str(models[model_id]["commitment"])


def collect_frozen_model(market: Channel, node_channels: Sequence[Channel], key: Ed25519PrivateKey,
                         modeler: str, tournament_id: str, model_id: str,
                         node_public_keys: Sequence[bytes]) -> FrozenModel:
    """Fetch every node's share at once, check receipts and commitment, reconstruct the model."""
    if len(node_channels) != len(node_public_keys) or len(node_channels) < 2:
        raise InvalidInput(f"give every node of the cluster (at least 2), in index order: got "
                           f"{len(node_channels)} addresses for {len(node_public_keys)} node keys")
    commitment = frozen_commitment(market, tournament_id, model_id, modeler)

    def one(i: int) -> ModelShare:
        return fetch_model_share(node_channels[i], key, modeler, tournament_id, i, node_public_key=node_public_keys[i],
                                 job_digest=commitment, model_id=model_id)

    shares = on_every_node(len(node_channels), one, name="collect-frozen")
    if any(s.manifest != shares[0].manifest for s in shares[1:]):
        raise IntegrityError("the nodes describe their model shares differently; they are not shares of one model")
    facts = [json.loads(s.receipt_json)["frozen"] for s in shares]
    check_frozen_shares(tournament_id, model_id, commitment, facts)
    check_released(shares[0].manifest)
    tensors = unscaled(reconstruct([read_share(s.data, s.manifest) for s in shares]), facts[0])
    datasets = [str(d) for d in facts[0]["datasets"]]
    first = market_call(market, "GetDataset", market_pb2.GetDatasetRequest(dataset_id=datasets[0]))
    schema = first.registration.schema
    return FrozenModel(tournament_id=tournament_id, model_id=model_id, modeler=modeler, commitment=commitment,
                       spec=parse_model_spec(facts[0]["recipe"]), datasets=datasets,
                       feature_columns=list(schema.feature_columns), label_column=schema.label_column,
                       tensors=tensors, shares=shares)


def write_frozen_model(path: Path, model: FrozenModel) -> None:
    """Write the JSON model atomically (mode 0600: the model is the modeler's alone)."""
    write_atomic(Path(path), json.dumps(model.document(), indent=1, sort_keys=True).encode("utf-8"), mode=0o600)
