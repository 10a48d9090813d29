"""The guardian's consent, from the registry's API to notifications through real Redis and PostgreSQL
(services/notifications/domain/model.py, ``suppressed_by_consent``): withdrawn, the absence notice to the
guardian is suppressed with its reason and never reaches the SMS provider, the report to the education
bureau and an urgent message go; given again, the family is reached again."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import text

from services.notifications.app import build_spec
from services.registry.app import SPEC as REGISTRY
from shared.contracts.notifications_v1 import MessageRequested
from tests.conftest import scalar
from tests.integration.notifications.helpers import EDUCATION, VILLAGE, delivery_rows
from tests.support import child_payload, fresh_county, running_app, token, wait_until

GUARDIAN_PHONE = child_payload()["guardian"]["phone"]
FINAL = ("delivered", "suppressed", "failed")


def _request(kind: str, child: str, recipients: list[dict], urgency: str = "normal") -> MessageRequested:
    # The agencies of the notifications tests serve VILLAGE's county: the message names that place.
    return MessageRequested(request_id=uuid.uuid4(), kind=kind, urgency=urgency, child_id=child, region_code=VILLAGE,
                            recipients=recipients, data={"school_id": "school-1"})


async def test_consent_withdrawn_suppresses_the_family_message_and_not_the_agencys(config, clock, settings, sms, engines):
    fast = settings.model_copy(update={"timer_poll_ms": 50})
    engine, auth = engines["notifications"], token(fast)
    county = fresh_county()
    async with running_app(REGISTRY, fast) as (_, registry), running_app(build_spec(config, clock), fast) as (_, notifications):
        r = await registry.post("/api/v1/children", json=child_payload(village_code=f"{county}001001"), headers=auth)
        assert r.status_code == 201, r.text
        child = r.json()["id"]

        async def carded() -> bool:
            return await scalar(engine, "SELECT count(*) FROM contacts WHERE child_id = :c", c=child) == 1

        await wait_until(carded, what="the contact card in notifications")

        async def consent(value: str) -> None:
            r = await registry.put(f"/api/v1/children/{child}/consent", json={"consent": value}, headers=auth)
            assert r.status_code == 200, r.text

            async def held() -> bool:
                return await scalar(engine, "SELECT consent FROM consents WHERE child_id = :c", c=child) == value

            await wait_until(held, what=f"notifications to hold the consent {value}")

        async def send(request: MessageRequested) -> dict[str, dict]:
            r = await notifications.post("/api/v1/messages", json=json.loads(request.model_dump_json()), headers=auth)
            assert r.status_code == 202, r.text

            async def settled() -> bool:
                rows = await delivery_rows(engine, request.request_id)
                return bool(rows) and all(d["status"] in FINAL for d in rows.values())

            await wait_until(settled, what=f"the deliveries of {request.kind}")
            rows = await delivery_rows(engine, request.request_id)
            family_refs.update(str(d["id"]) for d in rows.values() if d["recipient"].startswith("guardian:"))
            return rows

        family_refs: set[str] = set()

        def texts_to_family() -> list[dict]:
            # The simulator is shared by the worker's tests, and their children have the same guardian's
            # phone: only this child's deliveries count.
            return [m for m in sms.messages if m["to"] == GUARDIAN_PHONE and m["ref"] in family_refs]

        await consent("withdrawn")
        both = _request("absence_notice", child, [{"role": "guardian"}, {"role": "agency", "agency": "education_bureau"}])
        rows = await send(both)
        family, bureau = rows[f"guardian:{child}"], rows[f"agency:{EDUCATION}"]
        assert family["status"] == "suppressed" and family["suppressed_reason"].startswith("consent_withdrawn")
        assert family["delivered_at"] is None and family["text"] is None
        assert bureau["status"] == "delivered"
        assert texts_to_family() == []
        r = await notifications.get(f"/api/v1/messages/{both.request_id}", headers=auth)
        by_role = {d["recipient_role"]: d for d in r.json()}
        assert by_role["guardian"]["status"] == "suppressed" and "撤回知情同意" in by_role["guardian"]["suppressed_reason"]
        assert by_role["agency"]["suppressed_reason"] is None

        urgent = _request("violence_report", child, [{"role": "guardian"}], urgency="urgent")
        assert (await send(urgent))[f"guardian:{child}"]["status"] == "delivered"  # an emergency needs no consent
        assert len(texts_to_family()) == 1

        await consent("given")
        again = await send(_request("absence_notice", child, [{"role": "guardian"}]))
        assert again[f"guardian:{child}"]["status"] == "delivered"
        assert len(texts_to_family()) == 2
        # The suppressed one stays suppressed: it is not sent late.
        assert (await delivery_rows(engine, both.request_id))[f"guardian:{child}"]["status"] == "suppressed"
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT version FROM consents WHERE child_id = :c"), {"c": child})).scalar() >= 2
