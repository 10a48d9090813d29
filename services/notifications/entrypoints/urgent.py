"""The urgent lane (紧急通道): an urgent delivery (violence, a missing child, medical) is attempted
as soon as the request that planned it commits, not at the timer poller's next round behind every
normal message due. Its attempts are timers like all others (a restart loses none), of their own
kind; the service's poller fires them too, should this lane fall behind."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from services.notifications.service_layer.handlers import URGENT_ATTEMPT, Notifier
from shared.logs import log_fields
from shared.timers import TimerPoller

log = logging.getLogger("shouhu.notifications")


def urgent_lane(notifier: Notifier) -> Callable[..., Callable[[asyncio.Event], Awaitable[None]]]:
    """A background worker for the ServiceSpec: fires urgent attempts when woken, and every poll interval
    (retries that come due)."""

    def make(runtime) -> Callable[[asyncio.Event], Awaitable[None]]:
        poller = TimerPoller(runtime.spec.timers, runtime.uow, {URGENT_ATTEMPT: notifier.attempt},
                             poll_ms=runtime.settings.timer_poll_ms)
        planned = asyncio.Event()
        notifier.urgent_planned = planned.set

        async def run(stop: asyncio.Event) -> None:
            stopping = asyncio.ensure_future(stop.wait())
            try:
                while not stop.is_set():
                    planned.clear()  # before looking: a commit while we look wakes the next wait
                    try:
                        if await poller.fire_due():
                            continue
                    except Exception as exc:
                        log.warning("urgent lane failed; will retry", extra=log_fields(error=type(exc).__name__))
                    woken = asyncio.ensure_future(planned.wait())
                    await asyncio.wait({woken, stopping}, timeout=poller.poll, return_when=asyncio.FIRST_COMPLETED)
                    woken.cancel()
            finally:
                stopping.cancel()

        return run

    return make
