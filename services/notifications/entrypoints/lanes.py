"""The lanes of attempts: each claims its due attempts in batches (``SKIP LOCKED``) and hands their
messages to the channels concurrently, with bounds per channel of its own.

An urgent request read from a stream has its first attempt made in the consumer's own transaction
(``Notifier.requests_received``); the urgent lane (紧急通道) fires the rest: an urgent request asked for
over HTTP, as soon as it commits, and urgent retries and fallbacks. Neither queues behind normal messages,
for the database or for a channel. Everything shares the process's event loop, its database and
the machine's cores, so urgent work also goes first: from the moment a batch of requests holds an urgent
one until its first attempt is made, the normal lane hands nothing new over, and the consumers of contact
cards and ordinary requests apply nothing new (``UrgentFirst``).
Attempts are timers like all others (a restart loses none), of their own kind; each lane also looks every
poll interval (retries that come due). The urgent lane begins its transaction as soon as urgent requests are
seen (``WarmStart``), so that only its claim waits for their commit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

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
    """The priority of urgent work: ``hold`` when urgent requests for the urgent lane are seen, ``release``
    once the urgent lane has fired everything seen until it looked; ``at_once`` around urgent attempts made
    where they are planned. Meanwhile ``wait`` (the normal lane) pauses, for at most ``most_s``. A hold whose
    requests roll back is released at the urgent lane's next poll."""

    def __init__(self, most_s: float = MOST_YIELD_S) -> None:
        self.most_s, self.seen, self.released, self.active = most_s, 0, 0, 0
        self._clear = asyncio.Event()
        self._clear.set()

    def hold(self) -> None:
        self.seen += 1
        self._clear.clear()

    def release(self, seen: int) -> None:
        """The urgent lane has fired what was due after ``seen`` holds: unless more came since, go on."""
        self.released = max(self.released, seen)
        self._update()

    @contextmanager
    def at_once(self) -> Iterator[None]:
        """Urgent deliveries being planned and attempted right here (in a consumer's transaction)."""
        self.active += 1
        self._clear.clear()
        try:
            yield
        finally:
            self.active -= 1
            self._update()

    def _update(self) -> None:
        if self.released == self.seen and not self.active:
            self._clear.set()

    async def wait(self) -> None:
        if not self._clear.is_set():
            try:
                await asyncio.wait_for(self._clear.wait(), self.most_s)
            except TimeoutError:
                pass


class WarmStart:
    """The urgent lane's next unit of work, begun ahead: the connection's check-out (its ping), BEGIN and the
    scope are three round trips, made while the requests that plan the urgent deliveries still write and
    commit, instead of after. A factory of units of work for the poller: the begun one first, if any."""

    def __init__(self, uow_factory: Callable[[], object]) -> None:
        self.uow_factory, self._begun = uow_factory, None

    async def begin(self) -> None:
        if self._begun is None:
            uow = self.uow_factory()
            await uow.__aenter__()
            try:
                await uow.session.connection()
            except BaseException:
                await uow.__aexit__(None, None, None)
                raise
            self._begun = uow

    def __call__(self):
        begun, self._begun = self._begun, None
        return self.uow_factory() if begun is None else _entered(begun)

    async def close(self) -> None:
        """Stopping: the unit of work begun and not used goes back (rolled back)."""
        async with self():
            pass


@asynccontextmanager
async def _entered(uow):
    try:
        yield uow
    finally:
        await uow.__aexit__(None, None, None)


def _poller(notifier: Notifier, runtime, kind: str, *, yielding: bool = False, uow_factory=None) -> BatchTimerPoller:
    return BatchTimerPoller(runtime.spec.timers, uow_factory or runtime.uow, [kind], notifier.attempter(yielding=yielding),
                            poll_ms=runtime.settings.timer_poll_ms, metrics=runtime.metrics)


def normal_lane(notifier: Notifier) -> Worker:
    """A background worker for the ServiceSpec: fires normal attempts every poll interval, each
    hand-over after the urgent lane's work (``notifier.yield_to_urgent``)."""
    return lambda runtime: _poller(notifier, runtime, ATTEMPT, yielding=True).run


def urgent_lane(notifier: Notifier) -> Worker:
    """A background worker for the ServiceSpec: fires urgent attempts when woken, and every poll interval.
    Woken when urgent requests are seen, it begins its transaction, then claims once they have committed."""

    def make(runtime) -> Callable[[asyncio.Event], Awaitable[None]]:
        warm = WarmStart(runtime.uow)
        poller = _poller(notifier, runtime, URGENT_ATTEMPT, uow_factory=warm)
        planned, woken, first = asyncio.Event(), asyncio.Event(), UrgentFirst()

        def seen() -> None:
            first.hold()
            woken.set()

        def committed() -> None:
            planned.set()
            woken.set()

        notifier.urgent_planned, notifier.urgent_seen, notifier.yield_to_urgent = committed, seen, first.wait
        notifier.urgent_at_once = first.at_once

        async def run(stop: asyncio.Event) -> None:
            while not stop.is_set():
                planned.clear()  # before looking: a commit while we look wakes the next wait
                woken.clear()
                looked = first.seen
                try:
                    await poller.fire_due()
                except Exception as exc:
                    log.warning("urgent lane failed; will retry", extra=log_fields(error=type(exc).__name__))
                first.release(looked)
                await sleep_unless_stopped(stop, poller.poll, woken)
                if first.seen != looked and not planned.is_set():  # being planned: begin while they commit
                    try:
                        await warm.begin()
                    except Exception as exc:
                        log.warning("urgent lane failed; will retry", extra=log_fields(error=type(exc).__name__))
                    await sleep_unless_stopped(stop, first.most_s, planned)  # a rollback: at most this long
            await warm.close()

        return run

    return make
