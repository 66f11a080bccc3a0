"""The emulator's billing periods against dates worked out by hand from lago-api's rules
(app/services/subscriptions/dates/*): interval, calendar or anniversary, customer timezone."""

from datetime import UTC, datetime

import pytest

from local.lago_emulator.periods import charges_period


def at(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def period(interval, now, *, billing_time="calendar", subscription_at="2026-01-01T00:00:00Z", timezone="UTC",
           started_at=None, monthly=False):
    found = charges_period(interval=interval, billing_time=billing_time, subscription_at=at(subscription_at),
                           started_at=at(started_at or subscription_at), now=at(now), timezone=timezone,
                           bill_charges_monthly=monthly)
    return found.start.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", found.end.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@pytest.mark.parametrize(("case", "expected"), [
    (dict(interval="monthly", now="2026-11-15T12:00:00Z"), ("2026-11-01T00:00:00.000Z", "2026-11-30T23:59:59.999Z")),
    # New York: November opens on EDT (UTC-4) and closes on EST (UTC-5).
    (dict(interval="monthly", now="2026-11-15T12:00:00Z", timezone="America/New_York"),
     ("2026-11-01T04:00:00.000Z", "2026-12-01T04:59:59.999Z")),
    # 01:00 UTC on the 1st is still October 31 in Los Angeles.
    (dict(interval="monthly", now="2026-11-01T01:00:00Z", timezone="America/Los_Angeles"),
     ("2026-10-01T07:00:00.000Z", "2026-11-01T06:59:59.999Z")),
    # Anniversary on the 31st: February has no 31st, so the period ends on the 27th and the next starts the 28th.
    (dict(interval="monthly", now="2026-02-15T12:00:00Z", billing_time="anniversary", subscription_at="2026-01-31T00:00:00Z"),
     ("2026-01-31T00:00:00.000Z", "2026-02-27T23:59:59.999Z")),
    (dict(interval="monthly", now="2026-03-15T12:00:00Z", billing_time="anniversary", subscription_at="2026-01-31T00:00:00Z"),
     ("2026-02-28T00:00:00.000Z", "2026-03-30T23:59:59.999Z")),
    (dict(interval="monthly", now="2026-11-15T12:00:00Z", billing_time="anniversary", subscription_at="2026-01-20T00:00:00Z"),
     ("2026-10-20T00:00:00.000Z", "2026-11-19T23:59:59.999Z")),
    # Weeks start on Monday; 2026-11-15T12:00Z is Sunday 21:00 in Tokyo.
    (dict(interval="weekly", now="2026-11-15T12:00:00Z", timezone="Asia/Tokyo"),
     ("2026-11-08T15:00:00.000Z", "2026-11-15T14:59:59.999Z")),
    # Weekly anniversary from Wednesday 2026-01-07 (Tokyo).
    (dict(interval="weekly", now="2026-11-15T12:00:00Z", timezone="Asia/Tokyo", billing_time="anniversary",
          subscription_at="2026-01-07T03:00:00Z"), ("2026-11-10T15:00:00.000Z", "2026-11-17T14:59:59.999Z")),
    (dict(interval="quarterly", now="2026-11-15T12:00:00Z"), ("2026-10-01T00:00:00.000Z", "2026-12-31T23:59:59.999Z")),
    # Quarterly anniversary from 10 February: billed on the 10th of February, May, August and November.
    (dict(interval="quarterly", now="2026-11-15T12:00:00Z", billing_time="anniversary", subscription_at="2026-02-10T00:00:00Z"),
     ("2026-11-10T00:00:00.000Z", "2027-02-09T23:59:59.999Z")),
    (dict(interval="quarterly", now="2026-11-05T12:00:00Z", billing_time="anniversary", subscription_at="2026-02-10T00:00:00Z"),
     ("2026-08-10T00:00:00.000Z", "2026-11-09T23:59:59.999Z")),
    (dict(interval="semiannual", now="2026-11-15T12:00:00Z"), ("2026-07-01T00:00:00.000Z", "2026-12-31T23:59:59.999Z")),
    (dict(interval="semiannual", now="2026-11-15T12:00:00Z", billing_time="anniversary", subscription_at="2026-03-15T00:00:00Z"),
     ("2026-09-15T00:00:00.000Z", "2027-03-14T23:59:59.999Z")),
    (dict(interval="yearly", now="2026-11-15T12:00:00Z"), ("2026-01-01T00:00:00.000Z", "2026-12-31T23:59:59.999Z")),
    (dict(interval="yearly", now="2026-11-15T12:00:00Z", billing_time="anniversary", subscription_at="2025-03-15T00:00:00Z"),
     ("2026-03-15T00:00:00.000Z", "2027-03-14T23:59:59.999Z")),
    # A yearly plan that bills its charges monthly reports the month.
    (dict(interval="yearly", now="2026-11-15T12:00:00Z", monthly=True), ("2026-11-01T00:00:00.000Z", "2026-11-30T23:59:59.999Z")),
    # The first period starts when the subscription did, to the instant.
    (dict(interval="monthly", now="2026-11-15T12:00:00Z", subscription_at="2026-11-10T08:30:00Z"),
     ("2026-11-10T08:30:00.000Z", "2026-11-30T23:59:59.999Z")),
])
def test_current_period(case, expected):
    assert period(**case) == expected


def test_the_issuing_date_is_the_last_day_of_the_period():
    found = charges_period(interval="monthly", billing_time="calendar", subscription_at=datetime(2026, 1, 1, tzinfo=UTC),
                           started_at=datetime(2026, 1, 1, tzinfo=UTC), now=at("2026-11-15T12:00:00Z"), timezone="UTC")
    assert found.issuing_date.isoformat() == "2026-11-30"
