"""parse_event: a consumer's own types validated whole; the others only as far as moving past them needs."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest
from pydantic import ValidationError

from shared.contracts.envelope import parse_event
from shared.contracts.registry_v1 import CHILD_REGISTERED, ChildRegistered

CHILD = uuid4()


def _registered(head: dict | None = None, **changes) -> bytes:
    data = ChildRegistered(
        child_id=CHILD, gender="female", birth_date="2014-06-01", village_code="410523100201", hukou_status="registered",
        left_behind_type="both_parents_out", father_status="migrant_worker", mother_status="migrant_worker", risk_categories=[],
    )
    envelope = json.loads(CHILD_REGISTERED.envelope(
        data, producer="registry", aggregate_id=str(CHILD), aggregate_version=1, region_code="410523100201",
    ).model_dump_json())
    envelope["data"].update(changes)
    envelope.update(head or {})
    return json.dumps(envelope).encode()


def test_a_wanted_type_is_validated_with_its_data_model():
    event = parse_event(_registered(), {CHILD_REGISTERED.name})
    assert isinstance(event.data, ChildRegistered) and event.data.child_id == CHILD
    assert isinstance(parse_event(_registered()).data, ChildRegistered)  # no wanted: every known type
    with pytest.raises(ValidationError):
        parse_event(_registered(gender="unknown"), {CHILD_REGISTERED.name})


def test_a_type_the_consumer_does_not_handle_keeps_its_head_and_data_as_parsed_json():
    for raw in (_registered(), _registered(gender="unknown")):  # its data is not this consumer's to judge
        event = parse_event(raw, {"registry.consent.changed"})
        assert (event.type, event.aggregate_id, event.aggregate_version) == (CHILD_REGISTERED.name, str(CHILD), 1)
        assert isinstance(event.data, dict) and event.data["child_id"] == str(CHILD)
    with pytest.raises(ValidationError):  # the head itself is still checked
        parse_event(_registered({"aggregate_version": 0}), {"registry.consent.changed"})
