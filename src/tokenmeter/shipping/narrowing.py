"""Healing by narrowing: the ledger events of one subscription and code that Lago lacks, found without
reading more of the ledger than the slices where the counts disagree.

Day by day, then 15-minute slice by slice, Lago's event count (GET /events ``meta.total_count``) is held
against the totals' count; only a slice where Lago has fewer is read back from the ledger (its messages lie
between the slice's first and last stream sequence, on the subscription's subject). Within a slice, events
are halved by time until few enough to list, and only the ids Lago does not list are shipped again. A
transaction id stored twice in the ledger (a re-delivery after the dedup window) is a copy: it is
dead-lettered as ``duplicate_copy``, so the totals stop counting it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from tokenmeter.core import InvalidEventError, UsageEvent, timestamp_ms
from tokenmeter.nats import NatsSettings, subject_for

from .dead_letters import copy_to
from .lago_api import LagoApi
from .ledger import read_stream
from .period_totals import Period, ledger_events
from .totals import DAY_MS, SLICE_MS, DayTotals, SubscriptionTotals, Units, day_start_ms, plus, units_of
from .totals_store import TotalsStore

_LIST_AT_MOST = 500  # a slice with more ledger events than this is halved before its events are listed
DUPLICATE_COPY = "duplicate_copy"


@dataclass(slots=True)
class LedgerEntry:
    event: UsageEvent
    appended_ms: int  # when the ledger stored it
    seq: int

    def settled(self, settled_by: tuple[int, int]) -> bool:
        """Arrived by the settle time, and handed to lago_sync (``settled_by``: (ms, ledger seq))."""
        return self.appended_ms <= settled_by[0] and self.seq <= settled_by[1]


@dataclass
class Narrowed:
    missing: list[UsageEvent] = field(default_factory=list)
    copies: int = 0
    copied_units: Units = 0


async def narrow(js: Any, store: TotalsStore, lago: LagoApi, nats: NatsSettings, dead_letter_stream: str,
                 sub: SubscriptionTotals, edges: dict[str, DayTotals], period: Period, code: str,
                 settled_by: tuple[int, int], tokens_property: str, deadline: float) -> Narrowed:
    found = Narrowed()
    days = sorted(d for d, codes in sub.days.items() if code in codes and period.touches(day_start_ms(d), DAY_MS))
    for day in days:
        if time.monotonic() > deadline:
            break
        expected = ledger_events(sub, edges, period, day, code)
        start, end = period.clip(day_start_ms(day), DAY_MS)
        if expected <= 0 or (await lago.events(sub.subscription, code, start, end, per_page=1))[1] >= expected:
            continue
        doc = edges.get(day) or (await store.days(sub.subscription, [day]))[day]
        for index, part in sorted(doc.slices.items()):
            slice_start = day_start_ms(day) + index * SLICE_MS
            expected = part.events(code)
            if expected <= 0 or not period.touches(slice_start, SLICE_MS) or time.monotonic() > deadline:
                continue
            start, end = period.clip(slice_start, SLICE_MS)
            if (await lago.events(sub.subscription, code, start, end, per_page=1))[1] >= expected:
                continue
            entries = await _slice_events(js, nats, dead_letter_stream, sub.subscription, code, part.first_seq,
                                          part.last_seq, start, end, set(doc.dead), tokens_property, found)
            found.missing.extend(await missing_from_lago(lago, sub.subscription, code, Period(start, end), entries,
                                                         settled_by, deadline))
    return found


async def _slice_events(js: Any, nats: NatsSettings, dead_letter_stream: str, subscription: str, code: str,
                        first_seq: int, last_seq: int, start: int, end: int, dead: set[int], tokens_property: str,
                        found: Narrowed) -> list[LedgerEntry]:
    """The slice's ledger events, each transaction id once; later copies are dead-lettered."""
    subject = subject_for(nats.subject_prefix, subscription, code)
    entries: dict[str, LedgerEntry] = {}
    for msg in await read_stream(js, nats.stream, subject, first_seq=first_seq, last_seq=last_seq):
        seq = msg.metadata.sequence.stream
        if seq in dead:
            continue
        try:
            event = UsageEvent.from_dict(orjson.loads(msg.data))
        except (orjson.JSONDecodeError, InvalidEventError):
            continue
        if not start <= timestamp_ms(event.timestamp) <= end:
            continue
        first = entries.get(event.transaction_id)
        if first is None:
            entries[event.transaction_id] = LedgerEntry(event, int(msg.metadata.timestamp.timestamp() * 1000), seq)
            continue
        await copy_to(js, dead_letter_stream, msg, DUPLICATE_COPY,
                      f"transaction {event.transaction_id} is already in the ledger; Lago bills it once",
                      msg_id=f"{dead_letter_stream}:copy:{seq}", transaction_id=event.transaction_id)
        found.copies += 1
        found.copied_units = plus(found.copied_units, units_of(event.properties.get(tokens_property, 0)))
    return list(entries.values())


async def missing_from_lago(lago: LagoApi, subscription: str, code: str, period: Period, entries: list[LedgerEntry],
                            settled_by: tuple[int, int], deadline: float) -> list[UsageEvent]:
    """The settled entries Lago does not hold, by halving the range until it can be listed."""
    missing: list[UsageEvent] = []
    slices = [(period.start_ms, period.end_ms, sorted(entries, key=lambda e: timestamp_ms(e.event.timestamp)))]
    while slices and time.monotonic() < deadline:
        start, end, inside = slices.pop()
        settled = [e for e in inside if e.settled(settled_by)]
        if not settled:
            continue
        _, held = await lago.events(subscription, code, start, end, per_page=1)
        if held >= len(inside):
            continue  # Lago holds as many events here as the ledger has (copies on ClickHouse may hide one)
        if len(inside) > _LIST_AT_MOST and end > start:
            middle = timestamp_ms(inside[len(inside) // 2].event.timestamp)
            middle = min(max(middle, start), end - 1)
            slices.append((start, middle, [e for e in inside if timestamp_ms(e.event.timestamp) <= middle]))
            slices.append((middle + 1, end, [e for e in inside if timestamp_ms(e.event.timestamp) > middle]))
            continue
        listed: set[str] = set()
        page, pages = 1, 1
        while page <= pages:
            events, total = await lago.events(subscription, code, start, end, page=page, per_page=100)
            listed.update(str(e.get("transaction_id")) for e in events)
            pages, page = -(-total // 100), page + 1
        missing.extend(e.event for e in settled if e.event.transaction_id not in listed)
    return missing
