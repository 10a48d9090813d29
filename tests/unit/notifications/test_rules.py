from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.notifications.config import Agencies, Agency
from services.notifications.domain.model import QuietHours, RetryPolicy, after_failure
from shared.contracts.notifications_v1 import Channel, RecipientRole, Urgency

CN = ZoneInfo("Asia/Shanghai")
QUIET = QuietHours(time(22), time(7), CN)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 23, hour, minute, tzinfo=CN)


@pytest.mark.parametrize(
    ("now", "release"),
    [
        (at(21, 59), None),
        (at(22, 0), at(7) + timedelta(days=1)),
        (at(23, 30), at(7) + timedelta(days=1)),
        (at(3, 0), at(7)),  # after midnight: this morning
        (at(6, 59), at(7)),
        (at(7, 0), None),
        (at(12, 0), None),
    ],
)
def test_quiet_hours_hold_night_sms_to_people_until_seven(now, release):
    assert QUIET.release_at(now, channel=Channel.sms, role=RecipientRole.guardian, urgency=Urgency.normal) == release


def test_quiet_hours_are_judged_in_china_time_whatever_the_clock_zone():
    utc_night_in_china = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)  # 23:30 in Beijing
    assert QUIET.release_at(utc_night_in_china, channel=Channel.sms, role=RecipientRole.user, urgency=Urgency.normal) == at(7) + timedelta(days=1)


@pytest.mark.parametrize(
    ("channel", "role", "urgency"),
    [
        (Channel.sms, RecipientRole.guardian, Urgency.urgent),  # violence, missing child, medical
        (Channel.sms, RecipientRole.agency, Urgency.normal),  # offices are not woken, but not held either
        (Channel.email, RecipientRole.parents, Urgency.normal),
        (Channel.inbox, RecipientRole.user, Urgency.normal),
    ],
)
def test_quiet_hours_do_not_hold_urgent_messages_agencies_or_silent_channels(channel, role, urgency):
    assert QUIET.release_at(at(23), channel=channel, role=role, urgency=urgency) is None


def test_a_daytime_quiet_window_works_too():
    siesta = QuietHours(time(12), time(14), CN)
    assert siesta.release_at(at(13), channel=Channel.sms, role=RecipientRole.user, urgency=Urgency.normal) == at(14)
    assert siesta.release_at(at(23), channel=Channel.sms, role=RecipientRole.user, urgency=Urgency.normal) is None


def test_backoff_doubles_up_to_a_cap():
    policy = RetryPolicy(max_attempts=10, first_delay_s=30, max_delay_s=100)
    assert [policy.delay(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 100, 100]


CHANNELS = [Channel.webhook, Channel.email]
POLICY = RetryPolicy(max_attempts=3, first_delay_s=10)


def test_a_temporary_failure_retries_the_same_channel_until_the_attempts_are_used():
    assert after_failure(failed_attempts=1, permanent=False, policy=POLICY, channel_index=0, channels=CHANNELS).retry_after == timedelta(seconds=10)
    step = after_failure(failed_attempts=3, permanent=False, policy=POLICY, channel_index=0, channels=CHANNELS)
    assert (step.retry_after, step.channel_index) == (None, 1)


def test_a_permanent_failure_moves_on_at_once_and_the_last_channel_gives_up():
    step = after_failure(failed_attempts=1, permanent=True, policy=POLICY, channel_index=0, channels=CHANNELS)
    assert (step.retry_after, step.channel_index) == (None, 1)
    last = after_failure(failed_attempts=1, permanent=True, policy=POLICY, channel_index=1, channels=CHANNELS)
    assert (last.retry_after, last.channel_index) == (None, None)


def _agency(code, kind, region):
    return Agency(code=code, kind=kind, region=region, name=code, channels=["agency_stream"])


def test_the_township_agency_is_preferred_to_the_county_one():
    agencies = Agencies([
        _agency("zf-410523", "township_government", "410523"),
        _agency("zf-410523100", "township_government", "410523100"),
    ])
    assert agencies.find("township_government", "410523100201").code == "zf-410523100"
    assert agencies.find("township_government", "410523101201").code == "zf-410523"
    assert agencies.find("health", "410523100201") is None


def test_an_agency_must_be_reachable_on_its_channels():
    with pytest.raises(ValueError, match="webhook_url"):
        Agency(code="gaj-1", kind="public_security", region="410523", name="x", channels=["webhook"])
    with pytest.raises(ValueError, match="agencies are reached by"):
        Agency(code="gaj-1", kind="public_security", region="410523", name="x", channels=["sms"])
    with pytest.raises(ValueError, match="unique"):
        Agencies([_agency("a-1", "health", "410523"), _agency("a-1", "health", "410524")])
