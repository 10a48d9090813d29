"""Background loops (relay, claimers) pause with this so that a stop is immediate."""

import asyncio


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
