"""The coordinator's public Market API (and the admin's) against hostile input: a real
coordinator with its ledger on SQLite, 3 real nodes, every call over real TLS gRPC."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from ledger import verify_ledger
from mutualmind.errors import InvalidInput
from mutualmind.transport import channel_credentials, open_channel
from mutualmind.vocabulary.dataset import TableSchema
from mutualmind.vocabulary.payloads import (
    MAX_PAYLOAD_BYTES,
    MAX_SUPPLY,
    request_message,
)
from mutualmind.vocabulary.signed_requests import (
    dataset_registration_payload,
    new_nonce,
    signed_dataset_registration,
    signed_register_provider,
)
from mutualmind.vocabulary.signing_keys import generate_signing_key, sign
from proto import admin_pb2, admin_pb2_grpc, common_pb2, market_pb2, market_pb2_grpc
from tests.provider.conftest import market  # noqa: F401 - the live-cluster fixture

Market = Any


def _stub(m: Market) -> market_pb2_grpc.MarketStub:
    channel = open_channel(m.coordinator_address, channel_credentials(m.certs, None))
    return market_pb2_grpc.MarketStub(channel)


def _provider(stub: market_pb2_grpc.MarketStub, provider_id: str) -> Any:
    key = generate_signing_key()
    stub.RegisterProvider(signed_register_provider(key, provider_id), timeout=10)
    return key


def _registration(key: Any, provider_id: str, dataset_id: str, *, rows: int, columns: list[str]) -> Any:
    schema = TableSchema(tuple(columns), tuple(columns[:-1]), columns[-1])
    return signed_dataset_registration(
        key, dataset_id=dataset_id, provider_id=provider_id, rows=rows, cols=len(columns),
        frac_bits=16, schema=schema, share_commitments=[bytes(32)] * 3, purpose="training")


def _unchecked_registration(key: Any, provider_id: str, dataset_id: str, *, rows: int,
                            columns: list[str]) -> common_pb2.DatasetRegistration:
    """What a hostile client sends: signed, but never checked on its side."""
    reg = common_pb2.DatasetRegistration(
        dataset_id=dataset_id, provider_id=provider_id, rows=rows, cols=len(columns), frac_bits=16,
        schema=common_pb2.ColumnSchema(columns=columns, feature_columns=columns[:-1],
                                       label_column=columns[-1]),
        share_commitments=[bytes(32)] * 3, nonce=new_nonce(), purpose="training")
    reg.signature = sign(key, request_message("dataset_registered", dataset_registration_payload(reg)))
    return reg


def _code(method: Any, request: Any) -> tuple[grpc.StatusCode, str]:
    """The status and message a call that must fail ends with."""
    with pytest.raises(grpc.RpcError) as caught:
        method(request, timeout=30)
    return caught.value.code(), caught.value.details()


def test_registration_beyond_the_quota_is_refused_before_any_byte(market: Market) -> None:  # noqa: F811
    """2,097,152 x 4,096 (the largest table: 64 GiB per share) never reaches the ledger
    past a provider's 16 GiB; neither does the fifth 15 GiB share of a 64 GiB node."""
    stub = _stub(market)
    ledger = market.coordinator.ledger
    key = _provider(stub, "big-co")
    size = ledger.size
    columns = [f"c{i}" for i in range(4096)]
    code, message = _code(stub.RegisterDataset,
                          _registration(key, "big-co", "huge", rows=2_097_152, columns=columns))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "68719476736" in message and "per-provider quota of 17179869184" in message, message
    assert "--provider-quota-bytes" in message and "coordinator serve" in message
    with pytest.raises(InvalidInput, match="at most 2097152"):  # one row past the limit
        _registration(key, "big-co", "long", rows=2_097_153, columns=columns[:4])
    assert ledger.size == size
    fifteen_gib = 15 * (1 << 30) // (8 * 1024)  # rows of a 1024-column, 15 GiB share
    for i in range(4):
        owner = f"p{i}"
        stub.RegisterDataset(_registration(_provider(stub, owner), owner, f"d{i}", rows=fifteen_gib,
                                           columns=columns[:1024]), timeout=10)
    code, message = _code(stub.RegisterDataset, _registration(
        _provider(stub, "p4"), "p4", "d4", rows=fifteen_gib, columns=columns[:1024]))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "with the 64424509440 bytes already held" in message
    assert all(n.store.list() == [] for n in market.nodes)
    assert verify_ledger(ledger.path).ok


def test_get_round_checks_the_id_before_any_path(market: Market) -> None:  # noqa: F811
    """`../probe` must not open <data>/rounds/probe.json (a garbled one made main answer
    INTERNAL, an absent one NOT_FOUND: an oracle for any *.json on the host)."""
    stub = _stub(market)
    probe = market.coordinator.rounds.state_dir / "probe.json"
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_text("not json")
    for round_id in ("../probe", "../../coordinator/x", "/etc/passwd", ""):
        code, message = _code(stub.GetRound, market_pb2.GetRoundRequest(round_id=round_id))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (round_id, message)
        assert "round_id" in message
    code, _ = _code(stub.GetRound, market_pb2.GetRoundRequest(round_id="probe"))
    assert code == grpc.StatusCode.NOT_FOUND


def test_list_entries_refuses_a_start_past_the_end(market: Market) -> None:  # noqa: F811
    stub = _stub(market)
    size = market.coordinator.ledger.size
    for start in (2**64 - 1, 2**63, size + 1):
        code, message = _code(stub.ListEntries, market_pb2.ListEntriesRequest(start=start))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and f"ledger, which holds {size}" in message
    assert list(stub.ListEntries(market_pb2.ListEntriesRequest(start=size), timeout=10).entries) == []


def test_entries_are_bounded_and_every_one_can_be_listed(market: Market) -> None:  # noqa: F811
    """Column names of 1 MB (main stored a 41 MB entry) are refused; the largest entries
    allowed (4,096 columns of 27 characters, ~240 KB) are listed in pages that fit."""
    stub = _stub(market)
    key = _provider(stub, "wide-co")
    size = market.coordinator.ledger.size
    for columns, what in (([("x" * 200), "y"], "must be a string of at most 128 characters"),
                          (["a\x1b[2Jb", "y"], "without control characters"),
                          ([("x" * 1_000_000), "y"], "bytes of canonical JSON, above the limit of 262144"),
                          ([f"c{i}-{'x' * 60}" for i in range(4096)], "above the limit of 262144")):
        code, message = _code(stub.RegisterDataset,
                              _unchecked_registration(key, "wide-co", "wide", rows=10, columns=columns))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and what in message
    assert market.coordinator.ledger.size == size
    wide = [f"column-{i:05d}-{'x' * 14}" for i in range(4096)]
    assert len(wide[0]) == 27
    for i in range(36):  # 36 x ~240 KB: more than one 8 MiB message
        stub.RegisterDataset(_registration(key, "wide-co", f"wide{i}", rows=10, columns=wide), timeout=30)
    biggest = max(len(e.payload_json) for e in market.coordinator.ledger.entries(limit=None))
    assert 230_000 < biggest <= MAX_PAYLOAD_BYTES
    listed, start, pages = [], 0, 0
    while True:
        page = stub.ListEntries(market_pb2.ListEntriesRequest(start=start, limit=1000), timeout=30).entries
        if not page:
            break
        listed += [e.index for e in page]
        start, pages = page[-1].index + 1, pages + 1
    assert listed == list(range(market.coordinator.ledger.size)) and pages >= 3


def test_supply_stays_within_int64_and_admin_apis_keep_working(market: Market) -> None:  # noqa: F811
    stub = _stub(market)
    for name in ("rich-a", "rich-b"):
        _provider(stub, name)
    with open_channel(f"127.0.0.1:{market.coordinator.cluster_port}",
                      channel_credentials(market.certs, "admin"), server_name="coordinator") as channel:
        admin = admin_pb2_grpc.AdminStub(channel)
        reply = admin.Mint(admin_pb2.MintRequest(provider_id="rich-a", amount=2**62 - 1, memo="a"), timeout=10)
        assert reply.balance == MAX_SUPPLY == 2**62 - 1
        size = market.coordinator.ledger.size
        for to, amount in (("rich-a", 2**62 - 1), ("rich-b", 2**62 - 1), ("rich-b", 1)):
            code, message = _code(admin.Mint, admin_pb2.MintRequest(provider_id=to, amount=amount, memo="b"))
            assert code == grpc.StatusCode.FAILED_PRECONDITION and "supply_limit" in message
            assert "mint at most 0" in message
        for amount in (2**63 - 1, -(2**63), 0, -1):
            code, _ = _code(admin.Mint, admin_pb2.MintRequest(provider_id="rich-b", amount=amount, memo="c"))
            assert code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT)
        assert market.coordinator.ledger.size == size
        providers = {p.provider_id: p.balance for p in
                     admin.ListProviders(admin_pb2.ListProvidersRequest(), timeout=10).providers}
        assert providers == {"rich-a": 2**62 - 1, "rich-b": 0}
        verified = admin.VerifyLedger(admin_pb2.VerifyLedgerRequest(), timeout=30)
        assert verified.ok and verified.total_supply == 2**62 - 1
    balance = stub.GetBalance(market_pb2.BalanceRequest(provider_id="rich-a"), timeout=10)
    assert balance.balance == 2**62 - 1
