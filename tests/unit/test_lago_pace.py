"""Lago Cloud's rate limits (current usage 200 requests/s, other reads 50/s): calls are spread under them."""

from __future__ import annotations

import asyncio
import time

from tokenmeter.shipping.lago_api import Pace


def test_turns_are_spread_at_the_rate_however_many_callers_wait_at_once():
    async def run() -> list[float]:
        pace, started, times = Pace(180.0), time.monotonic(), []

        async def call() -> None:
            await pace.turn()
            times.append(time.monotonic() - started)

        await asyncio.gather(*(call() for _ in range(46)))
        return sorted(times)

    times = asyncio.run(run())
    # 46 turns at 180/s: the first at once, the last no sooner than 45/180 = 0.25 s after it.
    assert times[-1] - times[0] >= 45 / 180 - 0.005
    # No window of one second could hold more than 200: here no 10 consecutive turns within 10/200 s.
    assert all(b - a >= 9 / 180 - 0.005 for a, b in zip(times, times[9:], strict=False))
