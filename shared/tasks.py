"""Background loops (relay, claimers) pause with this so that a stop is immediate."""

import asyncio


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None) -> None:
    """Pause ``seconds``, less if ``stop`` is set, or ``wake`` (work to do now: the caller clears it)."""
    if wake is None:
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            pass
        return
    waits = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())}
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
