"""A billing period's ledger totals from the running totals: whole UTC days from the subscription's document,
the (at most two) days the period only partly covers from their day documents, slice by slice.

A slice the period covers only in part (a first period that starts at a subscription's exact start time)
counts towards what Lago may bill at most, not towards what it must bill at least.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .totals import DAY_MS, SLICE_MS, DayTotals, SubscriptionTotals, Units, day_start_ms, plus, split_key, unsettled


@dataclass(frozen=True)
class Period:
    start_ms: int
    end_ms: int  # inclusive, to the last millisecond

    def covers(self, start_ms: int, length_ms: int) -> bool:
        return start_ms >= self.start_ms and start_ms + length_ms - 1 <= self.end_ms

    def touches(self, start_ms: int, length_ms: int) -> bool:
        return start_ms <= self.end_ms and start_ms + length_ms - 1 >= self.start_ms

    def clip(self, start_ms: int, length_ms: int) -> tuple[int, int]:
        return max(start_ms, self.start_ms), min(start_ms + length_ms - 1, self.end_ms)


@dataclass
class CodeTotals:
    certain: Units = 0  # units of events surely inside the period
    possible: Units = 0  # and of events in a slice the period covers in part
    unsettled: Units = 0  # of the above, arrived within the settle window
    unsettled_events: int = 0


def days_touching(period: Period) -> list[str]:
    """The UTC days (YYYYMMDD) the period touches, in order."""
    day = datetime.fromtimestamp(period.start_ms // DAY_MS * 86_400, UTC)
    days = []
    while int(day.timestamp()) * 1000 <= period.end_ms:
        days.append(day.strftime("%Y%m%d"))
        day += timedelta(days=1)
    return days


def edge_days(period: Period) -> list[str]:
    """The days the period touches without covering them whole: read slice by slice."""
    return [d for d in days_touching(period) if not period.covers(day_start_ms(d), DAY_MS)]


def period_totals(sub: SubscriptionTotals, edges: dict[str, DayTotals], period: Period, settled_by_ms: int,
                  shipped_through: int) -> dict[str, CodeTotals]:
    totals: dict[str, CodeTotals] = {}
    for day in days_touching(period):
        if day in edges:
            start = day_start_ms(day)
            for index, part in edges[day].slices.items():
                slice_start = start + index * SLICE_MS
                if not period.touches(slice_start, SLICE_MS):
                    continue
                whole = period.covers(slice_start, SLICE_MS)
                for key, (units, _) in part.by_key.items():
                    row = totals.setdefault(split_key(key)[0], CodeTotals())
                    row.possible = plus(row.possible, units)
                    if whole:
                        row.certain = plus(row.certain, units)
        else:
            for code, (units, _) in sub.days.get(day, {}).items():
                row = totals.setdefault(code, CodeTotals())
                row.certain, row.possible = plus(row.certain, units), plus(row.possible, units)
    for before, slice_start, code, units, events, seq in sub.recent:
        if unsettled(before, seq, settled_by_ms, shipped_through) and code in totals and (
                slice_start < 0 or period.touches(slice_start, SLICE_MS)):
            row = totals[code]
            row.unsettled, row.unsettled_events = plus(row.unsettled, units), row.unsettled_events + events
    return totals


def ledger_events(sub: SubscriptionTotals, edges: dict[str, DayTotals], period: Period, day: str, code: str) -> int:
    """Ledger events of one code on one day, within the period."""
    if day not in edges:
        return int(sub.days.get(day, {}).get(code, [0, 0])[1])
    start = day_start_ms(day)
    return sum(part.events(code) for index, part in edges[day].slices.items()
               if period.touches(start + index * SLICE_MS, SLICE_MS))
