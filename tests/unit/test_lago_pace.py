"""Lago Cloud's rate limits (event posts 500 requests/s, current usage 200/s, other reads 50/s): calls are
spread under them."""

from __future__ import annotations

import asyncio
import time

from tokenmeter.shipping.lago_api import Pace


def turn_times(pace: Pace, callers: int) -> list[float]:
    """When each of ``callers`` waiting at once got its turn, in order, from the first call."""
    async def run() -> list[float]:
        started, times = time.monotonic(), []

        async def call() -> None:
            await pace.turn()
            times.append(time.monotonic() - started)

        await asyncio.gather(*(call() for _ in range(callers)))
        return sorted(times)

    return asyncio.run(run())


def test_turns_are_spread_at_the_rate_however_many_callers_wait_at_once():
    times = turn_times(Pace(180.0), 46)
    # 46 turns at 180/s: the first at once, the last no sooner than 45/180 = 0.25 s after it.
    assert times[-1] - times[0] >= 45 / 180 - 0.005
    # No window of one second could hold more than 200: here no 10 consecutive turns within 10/200 s.
    assert all(b - a >= 9 / 180 - 0.005 for a, b in zip(times, times[9:], strict=False))


def test_event_posts_go_out_a_burst_at_once_then_at_the_rate():
    times = turn_times(Pace(450.0, burst=4), 49)
    # Lago Cloud takes 500 posts a second. Four go at once (no waiting), then one every 1/450 s: the
    # 49th no sooner than 45/450 = 0.1 s after the first, and no second's window could hold more than 454.
    assert times[3] - times[0] < 0.005
    assert times[-1] - times[0] >= 45 / 450 - 0.005
    assert all(b - a >= 40 / 450 - 0.005 for a, b in zip(times, times[44:], strict=False))


def test_a_pause_of_the_process_does_not_let_the_waiting_turns_out_at_once():
    pace = Pace(180.0)

    async def run() -> list[float]:
        started, times = time.monotonic(), []

        async def call() -> None:
            await pace.turn()
            times.append(time.monotonic() - started)

        async def pause() -> None:
            await asyncio.sleep(0.02)
            time.sleep(0.1)  # the whole process stops: no caller can go while it lasts

        await asyncio.gather(pause(), *(call() for _ in range(30)))
        return sorted(times)

    times = asyncio.run(run())
    # About 18 turns fell due during the pause; after it they still go one every 1/180 s, never ten together.
    assert all(b - a >= 9 / 180 - 0.005 for a, b in zip(times, times[9:], strict=False))


def test_one_pace_serves_callers_on_successive_event_loops():
    # A client kept across invocations may be driven by a new loop (a CLI command, a test): its callers still queue.
    pace = Pace(450.0, burst=2)
    first, second = turn_times(pace, 6), turn_times(pace, 6)
    assert second[-1] - second[0] >= 4 / 450 - 0.005 and first[-1] - first[0] >= 4 / 450 - 0.005
