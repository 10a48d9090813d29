"""The per-user rate limit (SHOUHU_RATE_LIMIT_PER_MINUTE): a token bucket per token subject, or per
client address without a valid token; 429 with a bilingual body and Retry-After."""

from __future__ import annotations

from services.reporting.app import SPEC as REPORTING
from shared.auth import Role, issue_token
from shared.service import RateLimiter
from tests.support import running_app, token


def test_a_bucket_holds_a_minute_of_requests_and_refills_continuously():
    now = [0.0]
    limiter = RateLimiter(3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(4)] == [0, 0, 0, 20]  # 3 a minute: one every 20 s
    assert limiter.take("b") == 0  # another user has a bucket of their own
    now[0] = 19.0
    assert limiter.take("a") == 1
    now[0] = 20.0
    assert limiter.take("a") == 0


async def test_a_user_over_the_limit_gets_429_and_others_do_not(settings):
    async with running_app(REPORTING, settings.model_copy(update={"rate_limit_per_minute": 2})) as (_, client):
        same_user = [token(settings, Role.county_office, "410523"), token(settings, Role.admin)]  # both subject "dev"
        answers = [await client.get("/api/v1/figures?region=410523", headers=h) for h in same_user * 2]
        assert [r.status_code for r in answers] == [200, 200, 429, 429]
        refused = answers[2]
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["message_zh"] and "too many requests" in refused.json()["message_en"]
        other = {"Authorization": f"Bearer {issue_token(settings, role=Role.admin, subject='another')}"}
        assert (await client.get("/api/v1/figures?region=410523", headers=other)).status_code == 200
        # Without a valid token the address is the requester: a made-up token gets no fresh bucket.
        forged = [{"Authorization": "Bearer not-a-token"}, {"Authorization": "Bearer another-made-up-one"}]
        assert [(await client.get("/api/v1/figures", headers=h)).status_code for h in forged * 2][-1] == 429
        assert (await client.get("/health")).status_code == 200  # probes are not counted
