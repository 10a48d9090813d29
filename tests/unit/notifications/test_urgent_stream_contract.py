"""Where a sender puts a request (shared/contracts/notifications_v1.py): urgent ones on their own stream,
as the same event type and version, so a consumer parses them alike."""

import uuid

from shared.contracts.envelope import parse_event
from shared.contracts.notifications_v1 import (
    MESSAGE_REQUESTED, NOTIFICATION_REQUESTS, NOTIFICATION_URGENT_REQUESTS, MessageRequested, message_requested,
)


def _request(urgency: str) -> MessageRequested:
    return MessageRequested(request_id=uuid.uuid4(), kind="violence_report", urgency=urgency, region_code="410523100201",
                            recipients=[{"role": "agency", "agency": "public_security"}])


def test_an_urgent_request_goes_on_the_urgent_stream_and_any_other_on_the_requests_stream():
    assert message_requested(_request("urgent")).stream == NOTIFICATION_URGENT_REQUESTS
    assert message_requested(_request("normal")) is MESSAGE_REQUESTED
    assert MESSAGE_REQUESTED.stream == NOTIFICATION_REQUESTS  # senders not yet moved keep working


def test_both_streams_carry_the_same_event_type_and_version():
    request = _request("urgent")
    urgent = message_requested(request)
    assert (urgent.name, urgent.version, urgent.model) == (MESSAGE_REQUESTED.name, 1, MessageRequested)
    raw = urgent.envelope(request, producer="visits", aggregate_id=str(request.request_id), aggregate_version=1,
                          region_code=request.region_code).model_dump_json()
    assert parse_event(raw, {MESSAGE_REQUESTED.name}).data == request
