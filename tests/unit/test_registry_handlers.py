"""The registry's command handlers against an in-memory unit of work (no I/O)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date
from uuid import uuid4

import pytest

from services.registry.adapters.id_vault import IdVault
from services.registry.domain.rules import RuleViolation, id_check_char
from services.registry.service_layer import handlers
from shared.crypto import KeyRing
from shared.contracts.registry_v1 import REGISTRY_CONTACTS, REGISTRY_EVENTS
from tests.support import child_payload
from tests.unit.fakes import FakeUnitOfWork

KEY = "unit-test-id-hash-key"
VAULT = IdVault(KEY, KeyRing.derived(KEY))
VILLAGE = "410523100201"
TOWNSHIP = VILLAGE[:9]


def id_number(birth: date, *, female: bool = True, area: str = "410523") -> str:
    first17 = f"{area}{birth:%Y%m%d}00{2 if female else 1}"
    return first17 + id_check_char(first17)


ID_NUMBER = id_number(date(2014, 6, 1))  # the payload's child: born 2014-06-01, female


def registration(**over) -> dict:
    """What the API hands the handler: the payload with a real date."""
    data = child_payload(village_code=VILLAGE, **over)
    data["birth_date"] = date.fromisoformat(data["birth_date"])
    return data


async def register(uow: FakeUnitOfWork, **over):
    child = await handlers.register_child(uow, registration(**over), actor="clerk-1", vault=VAULT)
    return child


async def update(uow: FakeUnitOfWork, child_id, patch: dict, *, region: str = TOWNSHIP):
    return await handlers.update_child(uow, child_id, patch, region=region, actor="clerk-2", vault=VAULT)


def personal_values(data: dict) -> list[str]:
    people = [data["father"], data["mother"], data.get("guardian") or {}]
    return [data["name"]] + [p[k] for p in people for k in ("name", "phone") if p.get(k)]


# --- registration ---------------------------------------------------------------------


async def test_registration_emits_registered_guardian_assigned_and_a_contact_card():
    uow = FakeUnitOfWork()
    child = await register(uow)

    events = uow.events
    assert [(e.name, e.event_type.version) for e in events] == [
        ("registry.child.registered", 1),
        ("registry.guardian.assigned", 1),
        ("registry.child.contacts", 1),
    ]
    assert [e.fields["aggregate_version"] for e in events] == [1, 2, 2]
    assert {e.fields["aggregate_id"] for e in events} == {str(child.id)}
    assert {e.fields["region_code"] for e in events} == {VILLAGE}
    assert [e.event_type.stream for e in events] == [REGISTRY_EVENTS, REGISTRY_EVENTS, REGISTRY_CONTACTS]
    registered, assigned, card = (e.data for e in events)
    assert (registered.village_code, registered.school_id) == (VILLAGE, "school-1")
    assert registered.father_status == "migrant_worker"
    assert registered.guardian_relationship == "grandparent"
    assert (assigned.relationship, assigned.capacity) == ("grandparent", "limited")
    assert (card.child_name, card.guardian.phone, card.father.phone) == ("测试儿童0", "13900139000", "13800138000")
    assert uow.commits == 1
    stored = await uow.children.get(child.id)
    assert stored.version == child.version == 2


async def test_registry_events_carry_no_name_phone_or_id_number():
    uow = FakeUnitOfWork()
    data = registration(id_number=ID_NUMBER)
    child = await handlers.register_child(uow, data, actor="clerk-1", vault=VAULT)

    on_events = [e.envelope.model_dump_json() for e in uow.events if e.event_type.stream == REGISTRY_EVENTS]
    assert len(on_events) == 2
    secrets = personal_values(data) + [ID_NUMBER, child.id_number_masked, child.id_number_hash]
    for text in on_events:
        for secret in secrets:
            assert secret not in text
    # The ID number does not travel on the contacts stream either.
    card = next(e for e in uow.events if e.event_type.stream == REGISTRY_CONTACTS).envelope.model_dump_json()
    assert ID_NUMBER not in card and child.id_number_masked not in card


async def test_registration_without_guardian_assigns_none_and_flags_the_child_unguarded():
    uow = FakeUnitOfWork()
    child = await register(uow, guardian=None)

    assert [(e.name, e.fields["aggregate_version"]) for e in uow.events] == [
        ("registry.child.registered", 1),
        ("registry.child.contacts", 1),
        ("registry.guardianship.unguarded", 2),
    ]
    assert uow.events[0].data.guardian_relationship is None
    assert uow.events[1].data.guardian is None
    assert uow.events[2].data.cause == "no_guardian"
    assert (child.version, child.unguarded_cause) == (2, "no_guardian")


async def test_id_number_is_stored_only_as_keyed_hash_and_masked_form():
    uow = FakeUnitOfWork()
    child = await register(uow, id_number=ID_NUMBER.lower())  # a lower-case x is the same number

    stored = await uow.children.get(child.id)
    assert stored.id_number_hash == hmac.new(KEY.encode(), ID_NUMBER.encode(), hashlib.sha256).hexdigest()
    assert stored.id_number_masked == ID_NUMBER[:4] + "*" * 10 + ID_NUMBER[-4:]
    assert ID_NUMBER not in repr(stored) and ID_NUMBER.lower() not in repr(stored)
    assert "id_number" not in vars(stored)


async def test_registration_refuses_an_id_number_that_contradicts_the_birth_date():
    uow = FakeUnitOfWork()
    with pytest.raises(RuleViolation) as err:
        await register(uow, id_number=id_number(date(2014, 6, 2)))
    assert err.value.field == "id_number"
    assert uow.events == [] and uow.children.committed == {}


# --- updates --------------------------------------------------------------------------


async def test_changing_only_the_school_emits_one_update_naming_only_school_id():
    uow = FakeUnitOfWork()
    child = await register(uow)
    uow.take_events()

    await update(uow, child.id, {"school_id": "school-2"})

    [event] = uow.events
    assert event.name == "registry.child.updated"
    assert event.data.changed_fields == ["school_id"]
    assert event.data.changes.school_id == "school-2"
    assert event.data.changes.model_dump(exclude_none=True) == {"school_id": "school-2"}
    assert (event.fields["aggregate_version"], event.fields["region_code"]) == (3, VILLAGE)
    assert (await uow.children.get(child.id)).school_id == "school-2"


async def test_changing_the_guardians_phone_names_the_field_without_its_value_and_sends_a_card():
    uow = FakeUnitOfWork()
    child = await register(uow)
    uow.take_events()

    await update(uow, child.id, {"guardian": {"phone": "13600136000"}})

    assert [e.name for e in uow.events] == ["registry.child.updated", "registry.child.contacts"]
    updated, card = uow.events
    assert updated.data.changed_fields == ["guardian.phone"]
    assert "13600136000" not in updated.envelope.model_dump_json()
    assert card.data.guardian.phone == "13600136000"
    assert card.data.guardian.name == "奶奶"  # the card is the whole current card, not a delta
    assert [e.fields["aggregate_version"] for e in uow.events] == [3, 3]
    stored = await uow.children.get(child.id)
    assert stored.guardian == {
        "name": "奶奶", "relationship": "grandparent", "capacity": "limited", "phone": "13600136000"
    }


async def test_a_patch_that_changes_nothing_emits_nothing_and_keeps_the_version():
    uow = FakeUnitOfWork()
    child = await register(uow)
    uow.take_events()
    commits = uow.commits

    returned = await update(
        uow, child.id,
        {"school_id": "school-1", "guardian": {"phone": "13900139000"}, "father": {}, "risk_categories": []},
    )

    assert uow.events == []
    assert uow.commits == commits + 1  # only the record of access: the archive was shown
    assert uow.audited[-1] == ("update", "child", str(child.id))
    assert returned.version == (await uow.children.get(child.id)).version == 2


async def test_moving_a_child_out_of_the_callers_region_is_refused_and_emits_nothing():
    uow = FakeUnitOfWork()
    child = await register(uow)
    uow.take_events()

    with pytest.raises(handlers.ChildNotFound):
        await update(uow, child.id, {"village_code": "410524100001", "school_id": "school-9"})

    assert uow.events == []
    stored = await uow.children.get(child.id)
    assert (stored.village_code, stored.school_id, stored.version) == (VILLAGE, "school-1", 2)


async def test_a_child_of_another_region_is_not_found():
    uow = FakeUnitOfWork()
    child = await register(uow)
    uow.take_events()

    with pytest.raises(handlers.ChildNotFound):
        await update(uow, child.id, {"school_id": "school-2"}, region="410524")
    with pytest.raises(handlers.ChildNotFound):
        await update(uow, uuid4(), {"school_id": "school-2"})
    assert uow.events == []


async def test_moving_within_the_region_routes_by_the_new_village():
    uow = FakeUnitOfWork()
    child = await register(uow)
    uow.take_events()

    await update(uow, child.id, {"village_code": "410523100202"})

    [event] = uow.events
    assert event.data.changed_fields == ["village_code"]
    assert event.fields["region_code"] == "410523100202"


async def test_a_partial_guardian_for_a_child_without_one_is_a_rule_violation_naming_guardian():
    uow = FakeUnitOfWork()
    child = await register(uow, guardian=None)
    uow.take_events()

    with pytest.raises(RuleViolation) as err:
        await update(uow, child.id, {"guardian": {"phone": "13600136000"}})

    assert err.value.field == "guardian"
    assert err.value.zh and err.value.en
    assert uow.events == []
    assert (await uow.children.get(child.id)).guardian is None


async def test_a_new_guardian_is_assigned_in_the_next_version():
    uow = FakeUnitOfWork()
    child = await register(uow, guardian=None)
    uow.take_events()

    child = await update(uow, child.id, {"guardian": {"name": "舅舅", "relationship": "relative"}})

    # Version 2 was the 无人监护 flag; a guardian without a signed agreement does not lower it.
    assert [(e.name, e.fields["aggregate_version"]) for e in uow.events] == [
        ("registry.child.updated", 3),
        ("registry.guardian.assigned", 4),
        ("registry.child.contacts", 4),
    ]
    assert child.unguarded_cause == "no_guardian"
    updated, assigned, card = (e.data for e in uow.events)
    assert updated.changed_fields == ["guardian.capacity", "guardian.name", "guardian.relationship"]
    assert "舅舅" not in uow.events[0].envelope.model_dump_json()
    assert (assigned.relationship, assigned.capacity) == ("relative", "full")
    assert card.guardian.name == "舅舅"


async def test_removing_the_guardian_sends_a_card_without_one_and_flags_the_child():
    uow = FakeUnitOfWork()
    child = await register(uow)
    uow.take_events()

    await update(uow, child.id, {"guardian": None})

    assert [e.name for e in uow.events] == [
        "registry.child.updated", "registry.child.contacts", "registry.guardian.removed", "registry.guardianship.unguarded",
    ]
    assert "guardian.name" in uow.events[0].data.changed_fields
    assert uow.events[1].data.guardian is None
    assert uow.events[3].data.cause == "guardian_removed"


async def test_a_parents_status_travels_as_its_fact_name():
    uow = FakeUnitOfWork()
    child = await register(uow)
    uow.take_events()

    await update(uow, child.id, {"mother": {"status": "at_home"}})

    [event] = uow.events
    assert event.data.changed_fields == ["mother.status"]
    assert event.data.changes.mother_status == "at_home"


async def test_risk_categories_change_carries_the_new_list():
    uow = FakeUnitOfWork()
    child = await register(uow)
    uow.take_events()

    await update(uow, child.id, {"risk_categories": ["dropout", "dibao_family"]})

    [event] = uow.events
    assert event.data.changed_fields == ["risk_categories"]
    assert event.data.changes.risk_categories == ["dropout", "dibao_family"]


async def test_a_new_id_number_is_named_id_number_and_stored_protected():
    uow = FakeUnitOfWork()
    child = await register(uow)
    uow.take_events()

    await update(uow, child.id, {"id_number": ID_NUMBER})

    [event] = uow.events
    assert event.data.changed_fields == ["id_number"]
    stored = await uow.children.get(child.id)
    text = event.envelope.model_dump_json()
    assert stored.id_number_hash not in text and ID_NUMBER not in text and stored.id_number_masked not in text
    assert stored.id_number_masked == ID_NUMBER[:4] + "*" * 10 + ID_NUMBER[-4:]

    await update(uow, child.id, {"id_number": ID_NUMBER})  # the same number again: no change
    assert len(uow.events) == 1


async def test_an_id_number_can_be_cleared():
    uow = FakeUnitOfWork()
    child = await register(uow, id_number=ID_NUMBER)
    uow.take_events()

    await update(uow, child.id, {"id_number": None})

    assert uow.events[0].data.changed_fields == ["id_number"]
    stored = await uow.children.get(child.id)
    assert stored.id_number_hash is None and stored.id_number_masked is None


async def test_changing_birth_date_or_gender_of_a_child_with_an_id_number_needs_the_number():
    uow = FakeUnitOfWork()
    child = await register(uow, id_number=ID_NUMBER)
    uow.take_events()

    for patch in ({"birth_date": date(2014, 6, 2)}, {"gender": "male"}):
        with pytest.raises(RuleViolation) as err:
            await update(uow, child.id, patch)
        assert err.value.field == "id_number"
    with pytest.raises(RuleViolation) as err:  # a number that disagrees with the new date
        await update(uow, child.id, {"birth_date": date(2014, 6, 2), "id_number": ID_NUMBER})
    assert (err.value.field, err.value.code) == ("id_number", "id_number_birth_date")
    assert uow.events == []

    corrected = id_number(date(2014, 6, 2))
    await update(uow, child.id, {"birth_date": date(2014, 6, 2), "id_number": corrected})
    assert uow.events[0].data.changed_fields == ["birth_date", "id_number"]
    assert (await uow.children.get(child.id)).birth_date == date(2014, 6, 2)


async def test_successive_updates_number_versions_without_gaps():
    uow = FakeUnitOfWork()
    child = await register(uow)
    await update(uow, child.id, {"class_name": "四年级一班"})
    await update(uow, child.id, {"guardian": {"name": "爷爷"}})
    await update(uow, child.id, {"hukou_status": "unregistered"})

    on_events = [e.fields["aggregate_version"] for e in uow.events if e.event_type.stream == REGISTRY_EVENTS]
    assert on_events == [1, 2, 3, 4, 5, 6]
    assert (await uow.children.get(child.id)).version == 6
