"""The lanes of attempts: each claims its due attempts in batches (``SKIP LOCKED``) and hands their
messages to the channels concurrently, with bounds per channel of its own.

The urgent lane (紧急通道): an urgent delivery (violence, a missing child, medical) is attempted as
soon as the request that planned it commits, not at the next poll, and never queues behind normal
messages, for the database or for a channel. Attempts are timers like all others (a restart loses
none), of their own kind; each lane also looks every poll interval (retries that come due)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from services.notifications.service_layer.handlers import ATTEMPT, URGENT_ATTEMPT, Notifier
from shared.logs import log_fields
from shared.timers import BatchTimerPoller

log = logging.getLogger("shouhu.notifications")

Worker = Callable[..., Callable[[asyncio.Event], Awaitable[None]]]


def _poller(notifier: Notifier, runtime, kind: str) -> BatchTimerPoller:
    return BatchTimerPoller(runtime.spec.timers, runtime.uow, [kind], notifier.attempter(),
                            poll_ms=runtime.settings.timer_poll_ms, metrics=runtime.metrics)


def normal_lane(notifier: Notifier) -> Worker:
    """A background worker for the ServiceSpec: fires normal attempts every poll interval."""
    return lambda runtime: _poller(notifier, runtime, ATTEMPT).run


def urgent_lane(notifier: Notifier) -> Worker:
    """A background worker for the ServiceSpec: fires urgent attempts when woken, and every poll interval."""

    def make(runtime) -> Callable[[asyncio.Event], Awaitable[None]]:
        poller = _poller(notifier, runtime, URGENT_ATTEMPT)
        planned = asyncio.Event()
        notifier.urgent_planned = planned.set

        async def run(stop: asyncio.Event) -> None:
            stopping = asyncio.ensure_future(stop.wait())
            try:
                while not stop.is_set():
                    planned.clear()  # before looking: a commit while we look wakes the next wait
                    try:
                        await poller.fire_due()
                    except Exception as exc:
                        log.warning("urgent lane failed; will retry", extra=log_fields(error=type(exc).__name__))
                    woken = asyncio.ensure_future(planned.wait())
                    await asyncio.wait({woken, stopping}, timeout=poller.poll, return_when=asyncio.FIRST_COMPLETED)
                    woken.cancel()
            finally:
                stopping.cancel()

        return run

    return make
