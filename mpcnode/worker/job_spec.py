"""The worker's input: one JSON file written by the node's job runner.

The runner builds it from the coordinator's StartJob request, so every field is
untrusted and checked here before anything touches the network or the disk.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.beacon import check_beacon
from mutualmind.vocabulary.data_plane import BENCH_PLANE, DEFAULT_PLANE, check_plane
from mutualmind.vocabulary.dataset import validate_dataset_id
from mutualmind.vocabulary.inference import INFERENCE_JOB, JOB_KINDS, TRAINING_JOB
from mutualmind.vocabulary.model_spec import ModelSpec, parse_model_spec

JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
HOST_PATTERN = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
MAX_PARTIES = 16
MAX_DATASETS = 256
DEFAULT_BUDGET_BYTES = 4 << 30
MIN_BUDGET_BYTES = 64 << 20
MAX_BUDGET_BYTES = 1 << 42


@dataclass(frozen=True)
class WorkerSpec:
    """One party's part of one MPC job.

    `rank` is this node's index (its shares are share number `rank` of every dataset);
    ranks 0..world_size-1 are the nodes, rank world_size is the dealer's TTP process.
    Rank 0 hosts the torch.distributed rendezvous at master_addr:master_port, bound to
    that address only.
    """

    job_id: str
    round_id: str
    rank: int
    world_size: int
    master_addr: str
    master_port: int
    data_dir: str
    dataset_ids: tuple[str, ...]
    validation_dataset_id: str
    model: ModelSpec
    output_dir: str
    gloo_interface: str = ""
    # what this party's process may use (memory_budget): a job that needs more is refused
    # before it joins the others, never killed by the kernel mid-round
    memory_budget_bytes: int = DEFAULT_BUDGET_BYTES
    # the data plane (issue 12): "grpc" (mutual TLS from the cluster CA in certs_dir;
    # plane_addresses[i] is node rank i's MPC listen address, plane_members[i] the
    # certificate name it must hold), or in bench mode only "gloo" (the benchmark
    # baseline, rendezvous at master_addr:master_port)
    plane: str = DEFAULT_PLANE
    plane_addresses: tuple[str, ...] = ()
    plane_members: tuple[str, ...] = ()
    certs_dir: str = ""
    plane_connect_timeout_s: float = 60.0
    # a tournament's job (issue 15): the JSON of `tournament_job.WorkerTournament`
    # ("" = a round's job); it has no validation dataset
    tournament: str = ""
    # "training" (a round's or tournament's batched training) or "inference" (issue 16:
    # the trained model in `model_dir`, a finished training job's folder on this node,
    # evaluated on the one query dataset in `dataset_ids`; no validation set)
    kind: str = TRAINING_JOB
    model_dir: str = ""
    # the coordinator's random beacon (mutualmind.vocabulary.beacon): seeds the copy
    # sample and Banzhaf's sampled coalitions; "" (tests, benchmarks): the job id does
    beacon: str = ""

    @property
    def seed(self) -> bytes:
        """The seed of the job's public random choices (copy sample, MSR coalitions)."""
        return bytes.fromhex(self.beacon) if self.beacon else self.job_id.encode()

    def to_json(self) -> str:
        raw = asdict(self)
        raw["model"] = json.loads(self.model.to_json())
        raw["dataset_ids"] = list(self.dataset_ids)
        raw["plane_addresses"] = list(self.plane_addresses)
        raw["plane_members"] = list(self.plane_members)
        return json.dumps(raw, sort_keys=True, indent=2)

    @property
    def rendezvous(self) -> str:
        """Rank 0's store listens on master_addr only (`mpcnode.worker.rendezvous`)."""
        from mpcnode.worker.rendezvous import rendezvous_url

        return rendezvous_url(self.master_addr, self.master_port)


def validate_job_id(job_id: object) -> str:
    """Job ids name directories, so they follow the dataset id rule."""
    if not isinstance(job_id, str) or not JOB_ID_PATTERN.fullmatch(job_id):
        raise InvalidInput(
            f"job id {job_id!r} is not valid: use 1-64 characters from A-Z a-z 0-9 . _ - "
            "starting with a letter or digit"
        )
    return job_id


def validate_host(host: object) -> str:
    """A rendezvous host: an IP address or a DNS name, nothing else."""
    if not isinstance(host, str) or not host:
        raise InvalidInput("master_addr must be a host name or IP address")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if not HOST_PATTERN.fullmatch(host):
        raise InvalidInput(f"master_addr {host!r} is neither an IP address nor a host name")
    return host


MEMBER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def validate_plane_address(address: object) -> str:
    """A data-plane address: host:port ([v6]:port), host an IP address or DNS name."""
    if not isinstance(address, str) or ":" not in address:
        raise InvalidInput(f"data-plane address {address!r} must be host:port")
    host, _, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    validate_host(host)
    if not port.isdigit():
        raise InvalidInput(f"data-plane address {address!r} needs a numeric port")
    check_port(int(port))
    return address


def _plane_fields(raw: dict, world_size: int, bench: bool) -> dict[str, object]:
    plane = check_plane(raw.get("plane", DEFAULT_PLANE), bench=bench)
    if plane == BENCH_PLANE:
        return {"plane": plane}
    addresses = raw.get("plane_addresses")
    if not isinstance(addresses, list) or len(addresses) != world_size:
        raise InvalidInput(f"plane_addresses must list the {world_size} nodes' MPC host:port, in rank order")
    members = raw.get("plane_members") or [f"node{i}" for i in range(world_size)]
    if (not isinstance(members, list) or len(members) != world_size
            or not all(isinstance(m, str) and MEMBER_PATTERN.fullmatch(m) for m in members)):
        raise InvalidInput(f"plane_members must list the {world_size} nodes' certificate names, in rank order")
    certs_dir = raw.get("certs_dir")
    if not isinstance(certs_dir, str) or not certs_dir:
        raise InvalidInput("the grpc plane needs certs_dir: the cluster folder with this node's certificate")
    timeout = raw.get("plane_connect_timeout_s", 60.0)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0.5 <= timeout <= 3600:
        raise InvalidInput(f"plane_connect_timeout_s {timeout!r} must be a number of seconds in [0.5, 3600]")
    return {
        "plane": plane,
        "plane_addresses": tuple(validate_plane_address(a) for a in addresses),
        "plane_members": tuple(members),
        "certs_dir": str(Path(certs_dir)),
        "plane_connect_timeout_s": float(timeout),
    }


def check_party(rank: object, world_size: object) -> tuple[int, int]:
    if not isinstance(world_size, int) or isinstance(world_size, bool) or not 2 <= world_size <= MAX_PARTIES:
        raise InvalidInput(f"world size {world_size!r} must be an integer between 2 and {MAX_PARTIES}")
    if not isinstance(rank, int) or isinstance(rank, bool) or not 0 <= rank < world_size:
        raise InvalidInput(f"rank {rank!r} must be an integer in [0, {world_size})")
    return rank, world_size


def check_port(port: object) -> int:
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise InvalidInput(f"master_port {port!r} must be an integer between 1 and 65535")
    return port


def parse_worker_spec(text: str, *, bench: bool = False) -> WorkerSpec:
    """Parse the worker's JSON input; every refusal is InvalidInput naming the field.
    A gloo job parses only in `bench` mode (a benchmark or test harness started the worker)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidInput(f"worker spec is not valid JSON ({err})") from None
    if not isinstance(raw, dict):
        raise InvalidInput("worker spec must be a JSON object")
    required = (
        "job_id", "round_id", "rank", "world_size", "master_addr", "master_port", "data_dir",
        "dataset_ids", "validation_dataset_id", "model", "output_dir",
    )
    missing = [name for name in required if name not in raw]
    if missing:
        raise InvalidInput(f"worker spec lacks {missing}")
    rank, world_size = check_party(raw["rank"], raw["world_size"])
    dataset_ids = raw["dataset_ids"]
    if not isinstance(dataset_ids, list) or not 1 <= len(dataset_ids) <= MAX_DATASETS:
        raise InvalidInput(f"dataset_ids must be a list of 1 to {MAX_DATASETS} dataset ids")
    ids = tuple(validate_dataset_id(d) for d in dataset_ids)
    if len(set(ids)) != len(ids):
        raise InvalidInput("dataset_ids repeats a dataset; each dataset takes part once")
    tournament = _tournament_field(raw.get("tournament"))
    kind, model_dir = _kind_fields(raw, ids)
    predicts = bool(tournament) and json.loads(tournament)["phase"] == "predict"
    if predicts != (kind == INFERENCE_JOB and bool(tournament)):
        raise InvalidInput("a tournament's predict phase runs as an inference job, and an inference "
                           "job's tournament is in its predict phase")
    validation = ("" if kind == INFERENCE_JOB or (tournament and not raw["validation_dataset_id"])
                  else validate_dataset_id(raw["validation_dataset_id"]))
    if validation in ids:
        raise InvalidInput(f"validation dataset {validation!r} is also a training dataset")
    round_id = raw["round_id"]
    if not isinstance(round_id, str) or not round_id or len(round_id) > 128:
        raise InvalidInput("round_id must be a non-empty string of at most 128 characters")
    for name in ("data_dir", "output_dir"):
        if not isinstance(raw[name], str) or not raw[name]:
            raise InvalidInput(f"{name} must be a directory path")
    budget = raw.get("memory_budget_bytes", DEFAULT_BUDGET_BYTES)
    if not isinstance(budget, int) or isinstance(budget, bool) or not MIN_BUDGET_BYTES <= budget <= MAX_BUDGET_BYTES:
        raise InvalidInput(f"memory_budget_bytes {budget!r} must be an integer in [{MIN_BUDGET_BYTES}, {MAX_BUDGET_BYTES}]")
    interface = raw.get("gloo_interface", "")
    if not isinstance(interface, str) or (interface and not re.fullmatch(r"[A-Za-z0-9._-]{1,15}", interface)):
        raise InvalidInput(f"gloo_interface {interface!r} is not a network interface name")
    return WorkerSpec(
        job_id=validate_job_id(raw["job_id"]),
        round_id=round_id,
        rank=rank,
        world_size=world_size,
        master_addr=validate_host(raw["master_addr"]),
        master_port=check_port(raw["master_port"]),
        data_dir=str(Path(raw["data_dir"])),
        dataset_ids=ids,
        validation_dataset_id=validation,
        model=parse_model_spec(raw["model"]),
        output_dir=str(Path(raw["output_dir"])),
        gloo_interface=interface,
        memory_budget_bytes=budget,
        tournament=tournament,
        beacon=check_beacon(raw["beacon"]) if raw.get("beacon", "") != "" else "",
        **_plane_fields(raw, world_size, bench),  # type: ignore[arg-type]
        kind=kind,
        model_dir=model_dir,
    )


def _tournament_field(raw: object) -> str:
    """The tournament description as canonical JSON ("" for a round's job), checked."""
    if raw in (None, "", {}):
        return ""
    from mutualmind.vocabulary.canonical_json import canonical_json
    from mutualmind.vocabulary.tournament_job import parse_worker_tournament

    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise InvalidInput("the worker spec's tournament is not valid JSON") from None
    parse_worker_tournament(raw)
    return canonical_json(raw).decode()


def _kind_fields(raw: dict, ids: tuple[str, ...]) -> tuple[str, str]:
    """(kind, model_dir): an inference job reads one query dataset and a trained model."""
    kind = raw.get("kind", TRAINING_JOB)
    if kind not in JOB_KINDS:
        raise InvalidInput(f"job kind {kind!r} must be one of {', '.join(JOB_KINDS)}")
    if kind == TRAINING_JOB:
        return kind, ""
    model_dir = raw.get("model_dir")
    if not isinstance(model_dir, str) or not model_dir:
        raise InvalidInput("an inference job needs model_dir: the trained job's folder on this node")
    if len(ids) != 1:
        raise InvalidInput(f"an inference job reads exactly one query dataset, got {len(ids)}")
    return kind, str(Path(model_dir))
