"""The lanes of attempts: each claims its due attempts in batches (``SKIP LOCKED``) and hands their
messages to the channels concurrently, with bounds per channel of its own.

The urgent lane (紧急通道): an urgent delivery (violence, a missing child, medical) is attempted as
soon as the request that planned it commits, not at the next poll, and never queues behind normal
messages, for the database or for a channel. Both lanes share the process's event loop, its database and
the machine's cores, so the urgent one also goes first: from the moment a batch of requests holds an urgent
one until the urgent lane has fired what it planned, the normal lane hands nothing new over (``UrgentFirst``).
Attempts are timers like all others (a restart loses none), of their own kind; each lane also looks every
poll interval (retries that come due)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from services.notifications.service_layer.handlers import ATTEMPT, URGENT_ATTEMPT, Notifier
from shared.logs import log_fields
from shared.tasks import sleep_unless_stopped
from shared.timers import BatchTimerPoller

log = logging.getLogger("shouhu.notifications")

Worker = Callable[..., Callable[[asyncio.Event], Awaitable[None]]]


# The longest a normal hand-over waits for the urgent lane: an urgent channel that hangs (a webhook up to
# its timeout) slows the normal messages down, it does not stop them.
MOST_YIELD_S = 0.5


class UrgentFirst:
    """The urgent lane's priority: ``hold`` when urgent requests are seen, ``release`` once the urgent
    lane has fired everything seen until it looked; meanwhile ``wait`` (the normal lane) pauses, for at
    most ``most_s``. A hold whose requests roll back is released at the urgent lane's next poll."""

    def __init__(self, most_s: float = MOST_YIELD_S) -> None:
        self.most_s, self.seen = most_s, 0
        self._clear = asyncio.Event()
        self._clear.set()

    def hold(self) -> None:
        self.seen += 1
        self._clear.clear()

    def release(self, seen: int) -> None:
        """The urgent lane has fired what was due after ``seen`` holds: unless more came since, go on."""
        if seen == self.seen:
            self._clear.set()

    async def wait(self) -> None:
        if not self._clear.is_set():
            try:
                await asyncio.wait_for(self._clear.wait(), self.most_s)
            except TimeoutError:
                pass


def _poller(notifier: Notifier, runtime, kind: str, *, yielding: bool = False) -> BatchTimerPoller:
    return BatchTimerPoller(runtime.spec.timers, runtime.uow, [kind], notifier.attempter(yielding=yielding),
                            poll_ms=runtime.settings.timer_poll_ms, metrics=runtime.metrics)


def normal_lane(notifier: Notifier) -> Worker:
    """A background worker for the ServiceSpec: fires normal attempts every poll interval, each
    hand-over after the urgent lane's work (``notifier.yield_to_urgent``)."""
    return lambda runtime: _poller(notifier, runtime, ATTEMPT, yielding=True).run


def urgent_lane(notifier: Notifier) -> Worker:
    """A background worker for the ServiceSpec: fires urgent attempts when woken, and every poll interval."""

    def make(runtime) -> Callable[[asyncio.Event], Awaitable[None]]:
        poller = _poller(notifier, runtime, URGENT_ATTEMPT)
        planned, first = asyncio.Event(), UrgentFirst()
        notifier.urgent_planned, notifier.urgent_seen, notifier.yield_to_urgent = planned.set, first.hold, first.wait

        async def run(stop: asyncio.Event) -> None:
            while not stop.is_set():
                planned.clear()  # before looking: a commit while we look wakes the next wait
                seen = first.seen
                try:
                    await poller.fire_due()
                except Exception as exc:
                    log.warning("urgent lane failed; will retry", extra=log_fields(error=type(exc).__name__))
                first.release(seen)
                await sleep_unless_stopped(stop, poller.poll, planned)

        return run

    return make
