"""A record sent again with its client_id (a phone retrying after a lost answer) is the same record:
200 with it, no second row, no second event. And a helper's own login finds its children."""

from __future__ import annotations

import uuid

from shared.auth import Role, issue_token
from tests.conftest import scalar
from tests.integration.visits.conftest import COUNTY


def login(visits, account: str) -> dict[str, str]:
    """A helper's own token: its subject is the account the helper was registered with."""
    return {"Authorization": f"Bearer {issue_token(visits.settings, role=Role.helper, subject=account, region=COUNTY)}"}


async def test_a_replayed_client_id_answers_the_same_record_without_a_second_row_or_event(start_visits):
    async with start_visits() as visits:
        child = await visits.child(1)
        mother = await visits.helper("caring_mother", account="mother-client-id")
        await visits.pair([mother], [child])
        client_id = str(uuid.uuid4())
        concern = [{"kind": "hardship", "severity": "medium"}]

        first = await visits.record(mother, child, "home_visit", client_id=client_id, concerns=concern)
        again = await visits.record(mother, child, "home_visit", client_id=client_id, concerns=concern)

        assert (first.status_code, again.status_code) == (201, 200), again.text
        assert first.json()["id"] == again.json()["id"] == client_id
        assert again.json()["concern_ids"] == first.json()["concern_ids"] != []
        assert await scalar(visits.engine, "SELECT count(*) FROM visit_records WHERE child_id = :c", c=child) == 1
        assert await scalar(visits.engine, "SELECT count(*) FROM concerns WHERE child_id = :c", c=child) == 1
        created = [e for e in await visits.outbox("visits.record.created") if e["data"]["child_id"] == str(child)]
        assert len(created) == 1

        # Another record of this helper gets its own id; the same id for another child is refused, naming it.
        other = await visits.record(mother, child, "phone")
        assert other.status_code == 201 and other.json()["id"] != client_id
        second_child = await visits.child(2)
        await visits.pair([mother], [second_child])
        taken = await visits.record(mother, second_child, "phone", client_id=client_id)
        assert taken.status_code == 422
        assert taken.json()["detail"]["errors"][0]["field"] == "client_id"


async def test_a_client_id_of_another_helpers_record_is_not_theirs_to_read(start_visits):
    async with start_visits() as visits:
        child = await visits.child(3)
        mother = await visits.helper("caring_mother", account="mother-a")
        await visits.helper("caring_mother", account="mother-b")
        await visits.pair([mother], [child])
        client_id = str(uuid.uuid4())
        assert (await visits.record(mother, child, "talk", client_id=client_id)).status_code == 201

        body = {"helper_id": mother, "child_id": str(child), "kind": "talk",
                "visited_on": (await visits.client.get(f"/api/v1/records/{client_id}", headers=visits.auth())).json()["visited_on"],
                "client_id": client_id}
        as_b = login(visits, "mother-b")
        r = await visits.client.post("/api/v1/records", json=body, headers=as_b)
        assert r.status_code == 404 and r.json()["detail"]["field"] == "helper_id"


async def test_my_children_are_the_helper_of_the_login_and_the_children_paired_today(start_visits):
    async with start_visits() as visits:
        kids = [await visits.child(n) for n in (4, 5)]
        unpaired = await visits.child(6)
        mother = await visits.helper("caring_mother", account="mother-me")
        await visits.pair([mother], kids)

        r = await visits.client.get("/api/v1/helpers/me", headers=login(visits, "mother-me"))
        assert r.status_code == 200, r.text
        assert r.json()["helper"]["id"] == mother
        assert {c["child_id"] for c in r.json()["children"]} == {str(k) for k in kids}
        assert str(unpaired) not in {c["child_id"] for c in r.json()["children"]}

        r = await visits.client.get("/api/v1/helpers/me", headers=login(visits, "nobody"))
        assert r.status_code == 404 and r.json()["detail"]["field"] == "account"
