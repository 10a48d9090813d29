"""The guardian's consent in notifications (domain/model.py, ``suppressed_by_consent``): while withdrawn,
messages to the family are suppressed with a reason, urgent ones and those to agencies and users go."""

import pytest

from services.notifications.domain.model import CONSENT_WITHDRAWN, suppressed_by_consent
from shared.contracts.notifications_v1 import RecipientRole as Role
from shared.contracts.notifications_v1 import Urgency


@pytest.mark.parametrize("role", [Role.guardian, Role.parents])
def test_a_message_to_the_family_is_suppressed_while_consent_is_withdrawn(role):
    reason = suppressed_by_consent(role, Urgency.normal, "withdrawn")
    assert reason == CONSENT_WITHDRAWN
    assert reason.startswith("consent_withdrawn") and "撤回知情同意" in reason and "withdrawn consent" in reason


@pytest.mark.parametrize("consent", ["given", None])
@pytest.mark.parametrize("role", [Role.guardian, Role.parents])
def test_a_message_to_the_family_goes_with_consent_or_none_recorded(role, consent):
    assert suppressed_by_consent(role, Urgency.normal, consent) is None


@pytest.mark.parametrize("role", [Role.agency, Role.user])
def test_agencies_and_users_are_reached_while_consent_is_withdrawn(role):
    assert suppressed_by_consent(role, Urgency.normal, "withdrawn") is None
    assert suppressed_by_consent(role, Urgency.urgent, "withdrawn") is None


def test_an_urgent_message_reaches_the_family_while_consent_is_withdrawn():
    assert suppressed_by_consent(Role.guardian, Urgency.urgent, "withdrawn") is None
