"""The running totals' arithmetic, with every expected value worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from tokenmeter.shipping.period_totals import Period, days_touching, edge_days, period_totals
from tokenmeter.shipping.totals import DayTotals, DeadLetter, PropertyNames, SubscriptionTotals, Usage, usage_of


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def usage(seq: int, when: str, units: int | Decimal, code: str = "llm_tokens", appended: int = 0,
          token_type: str = "input") -> Usage:
    return Usage(seq, "sub", code, "gpt-4o", token_type, ms(when), units, appended)


def test_a_day_document_sums_by_slice_and_skips_what_it_already_holds():
    day = DayTotals()
    day.add([usage(1, "2026-11-15T10:00:00+00:00", 5), usage(2, "2026-11-15T10:14:59.999+00:00", 7),
             usage(3, "2026-11-15T10:15:00+00:00", 11)], through=3)
    # 10:00 is slice 40 of the day (10 h x 4), 10:15 slice 41.
    assert {i: (s.first_seq, s.last_seq, s.by_key) for i, s in day.slices.items()} == {
        40: (1, 2, {"llm_tokens\x1fgpt-4o\x1finput": [12, 2]}), 41: (3, 3, {"llm_tokens\x1fgpt-4o\x1finput": [11, 1]})}
    # The same batch again (a pass killed after this document was written), with one new message.
    day.add([usage(2, "2026-11-15T10:14:59.999+00:00", 7), usage(3, "2026-11-15T10:15:00+00:00", 11),
             usage(4, "2026-11-15T10:16:00+00:00", 1)], through=4)
    assert day.slices[41].by_key == {"llm_tokens\x1fgpt-4o\x1finput": [12, 2]} and day.through == {"ledger": 4}
    assert DayTotals.from_json(day.to_json()) == day


def test_decimal_units_travel_exactly():
    day = DayTotals()
    day.add([usage(1, "2026-11-15T10:00:00+00:00", Decimal("0.1")), usage(2, "2026-11-15T10:01:00+00:00", Decimal("0.2"))],
            through=2)
    again = DayTotals.from_json(day.to_json())
    assert again.slices[40].by_key["llm_tokens\x1fgpt-4o\x1finput"] == [Decimal("0.3"), 2]


def test_a_dead_letter_takes_its_event_away_once_however_often_it_is_written():
    day, sub = DayTotals(), SubscriptionTotals("sub")
    events = [usage(1, "2026-11-15T10:00:00+00:00", 5), usage(2, "2026-11-15T10:01:00+00:00", 7)]
    day.add(events, 2)
    sub.add(events, 2, None, 2)
    # Two letters for ledger seq 2 (the second written after the dead-letter stream's dedup window).
    letters = [DeadLetter(1, 2, "invalid_event", events[1]), DeadLetter(2, 2, "invalid_event", events[1])]
    repeats = day.repeats(letters)
    assert repeats == {2}
    day.remove(letters, 2, repeats)
    sub.remove(letters, 2, repeats)
    assert day.slices[40].by_key["llm_tokens\x1fgpt-4o\x1finput"] == [5, 1] and day.dead == {2: 1}
    assert sub.days["20261115"]["llm_tokens"] == [5, 1]
    # A pass killed after the day document was written: the subscription document reads the same repeats.
    assert day.repeats(letters) == {2}


def test_usage_of_a_message_reads_the_contract_fields_and_refuses_what_lago_sync_cannot_ship():
    data = orjson.dumps({"transaction_id": "t1", "external_subscription_id": "acme/eu", "code": "llm_tokens",
                         "timestamp": "1794744000.250", "properties": {"tokens": 42, "model": "m", "token_type": "output"}})
    u = usage_of(data, 9, 1000, PropertyNames())
    assert (u.subscription, u.code, u.model, u.token_type, u.timestamp_ms, u.units) == (
        "acme/eu", "llm_tokens", "m", "output", 1_794_744_000_250, 42)
    assert u.day == "20261115" and u.slice == 48  # 12:00 UTC
    assert usage_of(b"{not json", 1, 0, PropertyNames()) is None
    assert usage_of(orjson.dumps({"transaction_id": "t"}), 1, 0, PropertyNames()) is None


# A monthly calendar period for a customer in Asia/Kathmandu (UTC+05:45): November 2026 local time runs from
# 2026-10-31T18:15:00Z to 2026-11-30T18:14:59.999Z.
KATHMANDU_NOVEMBER = Period(ms("2026-10-31T18:15:00+00:00"), ms("2026-11-30T18:14:59.999+00:00"))


def test_a_period_in_a_quarter_hour_timezone_is_whole_days_plus_two_edges():
    days = days_touching(KATHMANDU_NOVEMBER)
    assert days[0] == "20261031" and days[-1] == "20261130" and len(days) == 31
    assert edge_days(KATHMANDU_NOVEMBER) == ["20261031", "20261130"]


def _totals(events: list[Usage], period: Period, settled_by: int = 10**15, shipped: int = 10**9, settle_from=None):
    by_day: dict[str, DayTotals] = {}
    sub = SubscriptionTotals("sub")
    for u in events:
        by_day.setdefault(u.day, DayTotals()).add([u], u.seq)
    sub.add(events, max(u.seq for u in events), settle_from, shipped)
    edges = {d: by_day.get(d, DayTotals()) for d in edge_days(period)}
    return period_totals(sub, edges, period, settled_by, shipped)


def test_the_last_millisecond_of_a_local_period_is_in_it_and_the_next_is_not():
    events = [usage(1, "2026-10-31T18:14:59.999+00:00", 1),  # 23:59:59.999 on 31 October, Kathmandu
              usage(2, "2026-10-31T18:15:00+00:00", 10),  # 00:00 on 1 November
              usage(3, "2026-11-15T12:00:00+00:00", 100),
              usage(4, "2026-11-30T18:14:59.999+00:00", 1000),  # 23:59:59.999 on 30 November
              usage(5, "2026-11-30T18:15:00+00:00", 10000)]  # 00:00 on 1 December
    row = _totals(events, KATHMANDU_NOVEMBER)["llm_tokens"]
    assert (row.certain, row.possible, row.unsettled) == (1110, 1110, 0)


def test_a_slice_the_period_covers_in_part_counts_only_towards_the_most_lago_may_bill():
    # A first period that starts when the subscription did, 10:07 UTC: the 10:00-10:15 slice is split.
    period = Period(ms("2026-11-15T10:07:00+00:00"), ms("2026-11-30T23:59:59.999+00:00"))
    events = [usage(1, "2026-11-15T10:03:00+00:00", 3), usage(2, "2026-11-15T10:09:00+00:00", 5),
              usage(3, "2026-11-15T10:15:00+00:00", 7), usage(4, "2026-11-16T00:00:00+00:00", 11)]
    row = _totals(events, period)["llm_tokens"]
    assert (row.certain, row.possible) == (18, 26)


def test_arrivals_are_unsettled_until_the_settle_time_and_until_lago_sync_has_them():
    arrived = ms("2026-11-15T12:00:00.400+00:00")
    events = [usage(1, "2026-11-15T11:00:00+00:00", 5, appended=arrived - 7_200_000),
              usage(2, "2026-11-15T11:30:00+00:00", 7, appended=arrived),
              usage(3, "2026-11-15T11:31:00+00:00", 11, appended=arrived - 7_200_000)]
    period = Period(ms("2026-11-01T00:00:00+00:00"), ms("2026-11-30T23:59:59.999+00:00"))
    settle_from = arrived - 3_600_000
    # Seq 2 arrived within the hour; seq 3 is old but lago_sync has only been handed seqs up to 2.
    row = _totals(events, period, settled_by=arrived - 1000, shipped=2, settle_from=settle_from)["llm_tokens"]
    assert (row.certain, row.unsettled, row.unsettled_events) == (23, 18, 2)
    # An hour on, with lago_sync caught up: nothing is unsettled.
    row = _totals(events, period, settled_by=arrived + 3_600_000, shipped=3, settle_from=settle_from)["llm_tokens"]
    assert (row.certain, row.unsettled) == (23, 0)
    # Arrival is known to the second: the second an event arrived in is unsettled until it has passed whole.
    row = _totals(events, period, settled_by=ms("2026-11-15T12:00:00.999+00:00"), shipped=3,
                  settle_from=settle_from)["llm_tokens"]
    assert row.unsettled == 0
    row = _totals(events, period, settled_by=ms("2026-11-15T12:00:00.998+00:00"), shipped=3,
                  settle_from=settle_from)["llm_tokens"]
    assert row.unsettled == 7


@pytest.mark.parametrize("offset", ["+05:30", "+05:45", "-09:30", "+12:45", "+14:00"])
def test_every_quarter_hour_offset_period_is_read_without_a_partial_slice(offset):
    period = Period(ms(f"2026-11-01T00:00:00{offset}"), ms(f"2026-11-30T23:59:59.999{offset}"))
    events = [usage(1, f"2026-11-01T00:00:00{offset}", 1), usage(2, f"2026-11-30T23:59:59.999{offset}", 2),
              usage(3, f"2026-10-31T23:59:59.999{offset}", 4), usage(4, f"2026-12-01T00:00:00{offset}", 8)]
    row = _totals(events, period)["llm_tokens"]
    assert (row.certain, row.possible) == (3, 3)


def test_settled_arrivals_are_forgotten_and_many_are_folded_per_code():
    sub = SubscriptionTotals("sub")
    base = datetime(2026, 11, 15, 12, tzinfo=UTC).timestamp() * 1000
    events = [Usage(i + 1, "sub", "llm_tokens", "m", "input", int(base) - i * SLICE, 1, int(base) + i * 1000)
              for i, SLICE in enumerate([900_000] * 5000)]
    sub.add(events, 5000, int(base), 10**9)
    # 5,000 arrivals in 5,000 different seconds and slices: folded into one entry per minute and code.
    assert len(sub.recent) == 84 and sum(r[4] for r in sub.recent) == 5000 and {r[1] for r in sub.recent} == {-1}
    sub.settle(int(base) + 10**9, 10**9)
    assert sub.recent == []
