"""Reconciliation: the ledger's totals for each subscription's current Lago period against Lago's
current usage, healed event by event.

- The period is the one Lago reports (``from_datetime``..``to_datetime``): any plan interval, billing
  time and customer timezone.
- Lago's usage is late on both event stores, so drift is judged only on events that reached the
  ledger at least ``settle`` ago: Lago is short when it bills less than those, over when it bills
  more than the whole ledger; in between it is still settling.
- Short: the events Lago lacks are found by narrowing, never a whole period re-sent: per time slice,
  Lago's event count (GET /events) against the ledger's, halving the slice until it holds few enough
  events to list, then the ids Lago lists against the ledger's. Only those are shipped again
  (transaction ids and timestamps are deterministic, so a copy Lago already holds merges away).
- Over: reported, never deleted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tokenmeter.core import UsageEvent, parse_rfc3339_ms, timestamp_ms
from tokenmeter.nats import NatsSettings

from .lago_api import LagoApi, LagoUnavailable
from .ledger import LedgerEntry, dead_lettered_ids, first_kept_ms, ledger_events
from .settings import SyncSettings
from .shipper import chunks_of

# An event is appended to the ledger after it happened, at most this much earlier (publish_event
# refuses timestamps further in the future): reading from a period's start less this margin finds
# every event of the period.
_APPEND_MARGIN_MS = 15 * 60_000
_LIST_AT_MOST = 500  # a slice with more ledger events than this is halved before its events are listed


@dataclass
class MetricDrift:
    subscription: str
    code: str
    ledger: Decimal  # settled ledger events: Lago must bill at least this
    ledger_all: Decimal  # every ledger event of the period: Lago must bill at most this
    lago: Decimal | None  # None: the plan has no charge on this metric
    unsettled_events: int = 0
    healed_events: int = 0

    @property
    def drift(self) -> Decimal:
        return self.ledger_all - (self.lago or Decimal(0))

    @property
    def status(self) -> str:
        if self.lago is None:
            return "not_in_plan"
        if self.lago > self.ledger_all:
            return "lago_over"
        if self.lago < self.ledger:
            return "healed" if self.healed_events else "lago_short"
        return "ok" if self.lago == self.ledger_all else "settling"

    def as_dict(self) -> dict[str, Any]:
        return {"external_subscription_id": self.subscription, "code": self.code, "ledger_units": plain(self.ledger_all),
                "settled_ledger_units": plain(self.ledger), "lago_units": None if self.lago is None else plain(self.lago),
                "drift": plain(self.drift), "unsettled_events": self.unsettled_events,
                "healed_events": self.healed_events, "status": self.status}


@dataclass
class Reconciliation:
    checked_at: str
    metrics: list[MetricDrift] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # subscription -> why not checked

    @property
    def unresolved(self) -> list[MetricDrift]:
        """Drift still there after healing: what operators must look at."""
        return [m for m in self.metrics if m.status in ("lago_short", "lago_over")]

    def as_dict(self) -> dict[str, Any]:
        return {"checked_at": self.checked_at, "subscriptions": len({m.subscription for m in self.metrics}),
                "drifting": [m.as_dict() for m in self.metrics if m.status in ("lago_short", "lago_over", "healed")],
                "settling": sum(1 for m in self.metrics if m.status == "settling"),
                "healed_events": sum(m.healed_events for m in self.metrics), "skipped": self.skipped}


@dataclass(frozen=True)
class Period:
    start_ms: int
    end_ms: int  # inclusive, to the last millisecond


def lago_period(usage: Any) -> Period:
    """Lago's current billing period; its end (23:59:59 in the answer) runs to the last millisecond."""
    return Period(parse_rfc3339_ms(usage.from_datetime), parse_rfc3339_ms(usage.to_datetime) + 999)


async def reconcile(js: Any, lago: LagoApi, nats_settings: NatsSettings, settings: SyncSettings,
                    tokens_property: str, deadline: float) -> Reconciliation:
    now = datetime.now(UTC)
    result = Reconciliation(checked_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    since = now - timedelta(days=settings.reconcile_lookback_days)
    ledger = await ledger_events(js, nats_settings.stream, nats_settings.subject_prefix, since)
    never_billed = await dead_lettered_ids(js, settings.dead_letter_stream)
    kept_from = await first_kept_ms(js, nats_settings.stream)
    read_from = max(int(since.timestamp() * 1000), kept_from or 0)
    settled_by = int(now.timestamp() * 1000) - int(settings.reconcile_settle_seconds * 1000)
    for subscription_id, entries in sorted(ledger.items()):
        if time.monotonic() > deadline:
            result.skipped[subscription_id] = "out of time"
            continue
        try:
            subscription = await lago.subscription(subscription_id)
            if subscription is None or subscription.status != "active":
                result.skipped[subscription_id] = "unknown to Lago" if subscription is None else \
                    f"subscription {subscription.status}: no current usage"
                continue
            usage = await lago.current_usage(subscription.external_customer_id, subscription_id)
        except LagoUnavailable as exc:
            result.skipped[subscription_id] = str(exc)
            continue
        period = lago_period(usage)
        if period.start_ms - _APPEND_MARGIN_MS < read_from:
            result.skipped[subscription_id] = ("the ledger no longer reaches back to this period's start "
                                               "(NATS_STREAM_MAX_AGE_DAYS, RECONCILE_LOOKBACK_DAYS)")
            continue
        in_period = in_billing_period(entries.values(), period, never_billed)
        lago_units = _units_by_code(usage)
        for code in sorted({e.event.code for e in in_period}):
            of_code = [e for e in in_period if e.event.code == code]
            settled = [e for e in of_code if e.appended_ms <= settled_by]
            drift = MetricDrift(subscription_id, code, _tokens(settled, tokens_property), _tokens(of_code, tokens_property),
                                lago_units.get(code), unsettled_events=len(of_code) - len(settled))
            if drift.status == "lago_short" and settings.reconcile_heal:
                try:
                    missing = await missing_from_lago(lago, subscription_id, code, period, of_code, settled_by, deadline)
                    drift.healed_events = await reship(lago, missing, deadline)
                except LagoUnavailable as exc:
                    result.skipped[subscription_id] = f"healing: {exc}"
            result.metrics.append(drift)
    return result


def in_billing_period(entries: Any, period: Period, never_billed: set[str]) -> list[LedgerEntry]:
    """The ledger entries timestamped inside ``period``, less those never to be billed."""
    return [e for e in entries
            if period.start_ms <= timestamp_ms(e.event.timestamp) <= period.end_ms
            and e.event.transaction_id not in never_billed]


def _units_by_code(usage: Any) -> dict[str, Decimal]:
    """Lago's units per metric code. Every charge on a metric aggregates all its events (filters only
    split them), so two charges on one metric each show the whole."""
    units: dict[str, Decimal] = {}
    for charge in usage.charges_usage:
        code = charge.billable_metric.code
        units[code] = max(units.get(code, Decimal(0)), Decimal(charge.units))
    return units


def _tokens(entries: list[LedgerEntry], tokens_property: str) -> Decimal:
    return sum((Decimal(str(e.event.properties.get(tokens_property, 0))) for e in entries), Decimal(0))


async def missing_from_lago(lago: LagoApi, subscription: str, code: str, period: Period, entries: list[LedgerEntry],
                      settled_by: int, deadline: float) -> list[UsageEvent]:
    """The settled ledger events of one subscription and code that Lago does not hold, found by narrowing."""
    missing: list[UsageEvent] = []
    slices = [(period.start_ms, period.end_ms, sorted(entries, key=lambda e: timestamp_ms(e.event.timestamp)))]
    while slices and time.monotonic() < deadline:
        start, end, inside = slices.pop()
        settled = [e for e in inside if e.appended_ms <= settled_by]
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


async def reship(lago: LagoApi, events: list[UsageEvent], deadline: float) -> int:
    """Ship events again; returns how many Lago took (on ClickHouse a copy it held also counts)."""
    stored = 0
    for chunk in chunks_of([(None, e) for e in events]):
        if time.monotonic() > deadline:
            break
        stored += len((await lago.ship([e for _, e in chunk], deadline=deadline)).stored)
    return stored


def plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros, as the reports show units."""
    return format(value.normalize(), "f") if value else "0"
