"""The pacer spaces calls so that the far end never sees two closer than its interval."""

from __future__ import annotations

import asyncio
import time

from tapewatch.producers.framework import Pacer

INTERVAL_S = 0.2


async def _two_slots(pacer: Pacer, call_s: float, mark_done: bool) -> tuple[float, float]:
    """Start of the first slot, end of the first call and start of the second slot."""
    stop = asyncio.Event()
    assert not await pacer.wait(stop)
    await asyncio.sleep(call_s)  # the request in flight
    if mark_done:
        pacer.done()
    ended = time.monotonic()
    assert not await pacer.wait(stop)
    return ended, time.monotonic()


def test_without_done_the_pacer_spaces_starts() -> None:
    started = time.monotonic()
    _, second = asyncio.run(_two_slots(Pacer(INTERVAL_S), call_s=0.15, mark_done=False))
    assert second - started >= INTERVAL_S


def test_done_spaces_the_next_call_from_the_end_of_a_slow_one() -> None:
    # A request the network held for 0.15 s reached the server late; the next must still be an interval later.
    ended, second = asyncio.run(_two_slots(Pacer(INTERVAL_S), call_s=0.15, mark_done=True))
    assert second - ended >= INTERVAL_S


def test_a_stop_during_the_wait_is_reported() -> None:
    async def scenario() -> bool:
        pacer, stop = Pacer(10.0), asyncio.Event()
        await pacer.wait(stop)
        asyncio.get_running_loop().call_later(0.05, stop.set)
        return await pacer.wait(stop)

    started = time.monotonic()
    assert asyncio.run(scenario())
    assert time.monotonic() - started < 5
