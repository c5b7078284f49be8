"""The domain states are StrEnums: the same bytes on the ledger and the wire as bare strings."""

from __future__ import annotations

import json
from enum import StrEnum

import pytest

from mutualmind.errors import InvalidInput
from mutualmind.vocabulary.canonical_json import canonical_json
from mutualmind.vocabulary.payloads import KINDS, request_message
from mutualmind.vocabulary.states import UNSETTLED, EntryKind, JobState, RoundStatus
from proto import market_pb2


def test_canonical_json_of_a_member_is_the_plain_string() -> None:
    with_enums = {"kind": EntryKind.STAKE, "states": [RoundStatus.OPEN, JobState.DONE], RoundStatus.CLOSED: 1}
    plain = {"kind": "stake", "states": ["open", "done"], "closed": 1}
    assert canonical_json(with_enums) == canonical_json(plain) == b'{"closed":1,"kind":"stake","states":["open","done"]}'
    assert request_message(EntryKind.STAKE, {"a": 1}) == request_message("stake", {"a": 1})


def test_canonical_json_still_refuses_other_str_subclasses() -> None:
    class Sneaky(str):
        pass

    with pytest.raises(InvalidInput, match="Sneaky cannot be stored"):
        canonical_json({"x": Sneaky("y")})


@pytest.mark.parametrize("enum", [RoundStatus, JobState, EntryKind])
def test_members_are_their_strings_everywhere(enum: type[StrEnum]) -> None:
    for member in enum:
        assert member == member.value and hash(member) == hash(member.value)
        assert f"{member}" == str(member) == member.value
        assert json.dumps(member) == json.dumps(member.value)


def test_entry_kinds_are_exactly_the_payload_table() -> None:
    assert set(KINDS) == set(EntryKind)
    assert all(type(kind) is EntryKind for kind in KINDS)


def test_a_round_status_goes_into_a_proto_string_field_unchanged() -> None:
    view = market_pb2.RoundView(status=RoundStatus.RUNNING)
    assert view.SerializeToString() == market_pb2.RoundView(status="running").SerializeToString()
    assert UNSETTLED == {"open", "result"}
