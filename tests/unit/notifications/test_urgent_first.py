"""The urgent lane's priority over the normal one (entrypoints/lanes.py, ``UrgentFirst``)."""

import asyncio

from services.notifications.entrypoints.lanes import UrgentFirst


async def test_nothing_held_lets_the_normal_lane_go_at_once():
    await asyncio.wait_for(UrgentFirst(most_s=60).wait(), timeout=1)


async def test_a_hold_lasts_until_the_urgent_lane_has_fired_everything_seen():
    first = UrgentFirst(most_s=60)
    first.hold()
    looked = first.seen
    first.hold()  # seen while the urgent lane was firing: not yet fired
    waiting = asyncio.create_task(first.wait())
    first.release(looked)
    await asyncio.sleep(0.05)
    assert not waiting.done()
    first.release(first.seen)
    await asyncio.wait_for(waiting, timeout=1)


async def test_a_hold_never_released_slows_the_normal_lane_and_does_not_stop_it():
    first = UrgentFirst(most_s=0.05)
    first.hold()  # e.g. its requests rolled back, or the urgent channel hangs
    await asyncio.wait_for(first.wait(), timeout=1)


async def test_urgent_work_at_once_holds_the_normal_lane_until_it_ends_and_the_lanes_holds_still_count():
    first = UrgentFirst(most_s=60)
    with first.at_once():
        with first.at_once():  # two consumers' batches at once
            waiting = asyncio.create_task(first.wait())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # the other one still at work
        first.hold()  # and a request for the urgent lane seen meanwhile
    await asyncio.sleep(0.05)
    assert not waiting.done()
    first.release(first.seen)
    await asyncio.wait_for(waiting, timeout=1)
