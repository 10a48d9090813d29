"""Notifications (通知): recipients, channels, deliveries and receipts, the agency gateway."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from services.notifications.adapters.channels import build_channels
from services.notifications.adapters.directory import Directory
from services.notifications.adapters.orm import inbox, metadata, outbox, positions, timers
from services.notifications.config import NotificationsConfig
from services.notifications.domain.templates import Templates
from services.notifications.entrypoints.agency_doc import build_agency_doc_router
from services.notifications.entrypoints.api import build_router
from services.notifications.entrypoints.consumers import subscriptions
from services.notifications.entrypoints.lanes import normal_lane, urgent_lane
from services.notifications.service_layer.handlers import Notifier
from services.notifications.service_layer.unit_of_work import NotificationsUnitOfWork
from shared.contracts.agency_v1 import AGENCY_MESSAGE, ANSWER_REJECTED
from shared.contracts.notifications_v1 import AGENCY_ANSWERED, DELIVERY_ACKNOWLEDGED, DELIVERY_FAILED
from shared.service import ServiceSpec


def _now() -> datetime:
    return datetime.now(UTC)


def build_notifier(config: NotificationsConfig, clock: Callable[[], datetime] = _now) -> Notifier:
    return Notifier(
        directory=Directory(config.agencies()), templates=Templates.load(config.templates_file),
        channels=build_channels(config, lambda code: config.agency_secret("webhook", code)),
        retries=config.retries, quiet=config.quiet_hours(), timers=timers, clock=clock,
        concurrency=config.send_concurrency,
    )


def build_spec(config: NotificationsConfig | None = None, clock: Callable[[], datetime] = _now) -> ServiceSpec:
    notifier = build_notifier(config or NotificationsConfig(), clock)
    return ServiceSpec(
        name="notifications",
        description="Shouhu notifications (通知): messages to guardians, helpers and agencies by SMS, e-mail, "
        "signed webhooks, agency streams and the in-app inbox; de-duplicated, retried, receipted. Reads "
        "registry.contacts, notifications.requests and from-agency.<code>; writes notifications.events and "
        "to-agency.<code>. Agencies: see GET /asyncapi/agency.",
        metadata=metadata,
        uow_class=NotificationsUnitOfWork,
        outbox=outbox,
        publishes=(DELIVERY_FAILED, DELIVERY_ACKNOWLEDGED, AGENCY_ANSWERED, AGENCY_MESSAGE, ANSWER_REJECTED),
        subscriptions=lambda: subscriptions(notifier, notifier.directory.agencies),
        routers=(build_router(notifier), build_agency_doc_router()),
        consumer_tables=(inbox, positions),
        timers=timers,  # attempts are timers, fired by the lanes (entrypoints/lanes.py)
        background=(normal_lane(notifier), urgent_lane(notifier)),
    )


SPEC = build_spec()
