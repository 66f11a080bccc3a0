"""Billing periods for current usage, as lago-api computes them (app/services/subscriptions/dates/*).

A plan bills weekly, monthly, quarterly, semiannually or yearly; a subscription by calendar or by
anniversary (the day it started); all in the customer's timezone. Current usage reports the charges
period holding today: its first day at 00:00 and its last day at 23:59:59.999999 in the customer's
timezone, never earlier than the subscription started. Yearly and semiannual plans may bill charges
monthly (``bill_charges_monthly``). This is a port of the current-usage path only (no termination,
no upgrade, no timezone change in mid-period).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

INTERVALS = ("weekly", "monthly", "quarterly", "semiannual", "yearly")
_END_OF_DAY = time(23, 59, 59, 999_999)


@dataclass(frozen=True)
class Period:
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, inclusive (23:59:59.999999 local)
    issuing_date: date

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)  # .999999 s reads as the last millisecond


def charges_period(*, interval: str, billing_time: str, subscription_at: datetime, started_at: datetime,
                   now: datetime, timezone: str, bill_charges_monthly: bool = False) -> Period:
    zone = ZoneInfo(timezone)
    if interval in ("yearly", "semiannual") and bill_charges_monthly:
        interval = "monthly"
    dates = _Dates(interval, billing_time == "anniversary", subscription_at.astimezone(zone).date())
    today = now.astimezone(zone).date()
    first = dates.period_start(today)
    last = dates.period_end(first)
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    end = datetime.combine(last, _END_OF_DAY, zone).astimezone(UTC)
    start = max(start, started_at)
    end = max(end, started_at)
    issuing = datetime.combine(dates.next_end_of_period(today), _END_OF_DAY, zone).astimezone(UTC).date()
    return Period(start, end, issuing)


def _days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _build_date(year: int, month: int, day: int) -> date:
    """Lago's build_date: day 0 is the last day of the previous month; a day past the month's end is clamped."""
    if day == 0:
        day, month = 31, month - 1
        if month == 0:
            month, year = 12, year - 1
    return date(year, month, min(day, _days_in_month(year, month)))


def _last_day_of_month(day: date) -> bool:
    return day.day == _days_in_month(day.year, day.month)


def _add_months(day: date, months: int) -> date:
    """Ruby's Date#>>: the same day ``months`` later, clamped to the month's end."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, _days_in_month(year, month + 1)))


def _first_of(day: date, months: int) -> date:
    """The first day of the calendar month / quarter / half-year / year holding ``day``."""
    return date(day.year, (day.month - 1) // months * months + 1, 1)


class _Dates:
    def __init__(self, interval: str, anniversary: bool, subscription_at: date):
        if interval not in INTERVALS:
            raise ValueError(f"interval {interval!r}")
        self.interval, self.anniversary, self.sub = interval, anniversary, subscription_at
        self.months = {"monthly": 1, "quarterly": 3, "semiannual": 6, "yearly": 12}.get(interval, 0)

    def _anniversary_day_in(self, year: int, month: int) -> int:
        return min(self.sub.day, _days_in_month(year, month))

    # --- first day of the period holding ``day`` ---
    def period_start(self, day: date) -> date:
        if self.interval == "weekly":
            if not self.anniversary:
                return day - timedelta(days=day.weekday())  # Rails weeks start on Monday
            return day - timedelta(days=(day.weekday() - self.sub.weekday()) % 7)
        if not self.anniversary:
            return _first_of(day, self.months)
        if self.interval == "monthly":
            return self._previous_monthly_anniversary(day)
        if self.interval == "yearly":
            return self._previous_yearly_anniversary(day)
        return self._previous_multi_month_anniversary(day)

    def _previous_monthly_anniversary(self, day: date) -> date:
        anniversary = day.day if _last_day_of_month(day) and day.day < self.sub.day else self.sub.day
        year, month = day.year, day.month
        if day.day < anniversary:
            year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        return _build_date(year, month, anniversary)

    def _previous_yearly_anniversary(self, day: date) -> date:
        last_year = day.month < self.sub.month or (
            day.month == self.sub.month and day.day < self._anniversary_day_in(day.year, self.sub.month))
        return _build_date(day.year - 1 if last_year else day.year, self.sub.month, self.sub.day)

    def _previous_multi_month_anniversary(self, day: date) -> date:
        steps = 12 // self.months
        months = sorted((self.sub.month + self.months * i - 1) % 12 + 1 for i in range(steps))

        def before_anniversary(d: date) -> bool:
            return d.month not in months or d.day < self._anniversary_day_in(d.year, d.month)

        if day.month < months[0] or (day.month == months[0] and before_anniversary(day)):
            year, month = day.year - 1, months[-1]
        elif before_anniversary(day):
            year, month = day.year, max(m for m in months if m < day.month)
        else:
            year, month = day.year, day.month
        return _build_date(year, month, self._anniversary_day_in(year, month))

    # --- last day of the period that starts on ``first`` ---
    def period_end(self, first: date) -> date:
        if self.interval == "weekly":
            return first + timedelta(days=6)
        if not self.anniversary:
            return _add_months(_first_of(first, self.months), self.months) - timedelta(days=1)
        if self.interval in ("monthly", "yearly"):
            if self.interval == "monthly" and self.sub.day == 1:
                return _add_months(date(first.year, first.month, 1), 1) - timedelta(days=1)
            if self.interval == "yearly" and (self.sub.month, self.sub.day) == (1, 1):
                return date(first.year, 12, 31)
            following = _add_months(date(first.year, first.month, 1), self.months)
            end = _build_date(following.year, following.month, self.sub.day - 1)
            return end - timedelta(days=1) if _last_day_of_month(end) and self.sub.day > end.day else end
        if self.sub.day == 1 and (self.sub.month - 1) % self.months == 0:
            return _add_months(_first_of(first, self.months), self.months) - timedelta(days=1)
        following = _add_months(first, self.months)
        return _build_date(following.year, following.month,
                           self._anniversary_day_in(following.year, following.month)) - timedelta(days=1)

    def next_end_of_period(self, today: date) -> date:
        """The last day of the period holding ``today``: current usage's issuing date."""
        if self.interval == "monthly" and self.anniversary:
            # Lago walks from the billing day to the next anniversary, month by month.
            end = _build_date(today.year, today.month, self.sub.day) - timedelta(days=1)
            if end >= today:
                return end
            following = _add_months(date(today.year, today.month, 1), 1)
            return _build_date(following.year, following.month, self.sub.day) - timedelta(days=1)
        return self.period_end(self.period_start(today))
