"""Reconciliation: the running totals of each subscription the ledger touched against Lago's current usage.

- A pass checks only subscriptions marked due (new usage or dead letters since their last check, or a
  check that has not come to rest), a few at a time and within Lago's current-usage rate; it stops
  before its deadline and the next pass goes on after the last one it checked.
- The period is the one Lago reports (``from_datetime``..``to_datetime``): any interval, billing time
  and timezone; the totals give it from whole UTC days and 15-minute slices.
- Lago's usage is late on both event stores, so it must bill at least the events the ledger has held
  for ``settle`` and at most all of them; in between it is still settling.
- Short: the events Lago lacks are found by narrowing (``narrowing.py``) and only those are sent again.
  Over: reported, never deleted.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tokenmeter.core import UsageEvent, parse_rfc3339_ms
from tokenmeter.nats import NatsSettings

from .lago_api import LagoApi, LagoUnavailable, chunks_of
from .lago_wire import CurrentUsage
from .narrowing import narrow
from .period_totals import Period, edge_days, period_totals
from .reconcile_settings import ReconcileSettings
from .tally import shipped_through
from .totals import Checkpoint, SubscriptionTotals, plus
from .totals_store import CHECKPOINT, TotalsStore, key_token, subscription_key

_AT_REST = ("ok", "not_in_plan")


@dataclass
class MetricDrift:
    subscription: str
    code: str
    ledger: Decimal  # settled ledger units: Lago must bill at least this
    ledger_all: Decimal  # every ledger unit that may fall in the period: Lago must bill at most this
    lago: Decimal | None  # None: the plan has no charge on this metric
    unsettled_events: int = 0
    healed_events: int = 0
    duplicate_copies: int = 0  # ledger copies of one transaction id found (and dead-lettered) while narrowing

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
                "healed_events": self.healed_events, "duplicate_copies": self.duplicate_copies, "status": self.status}


@dataclass
class Reconciliation:
    checked_at: str
    metrics: list[MetricDrift] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # subscription -> why not checked
    checked: int = 0
    waiting: int = 0  # due subscriptions left for the next pass

    @property
    def unresolved(self) -> list[MetricDrift]:
        """Drift still there after healing: what operators must look at."""
        return [m for m in self.metrics if m.status in ("lago_short", "lago_over")]

    def as_dict(self) -> dict[str, Any]:
        return {"checked_at": self.checked_at, "subscriptions": self.checked, "waiting": self.waiting,
                "drifting": [m.as_dict() for m in self.metrics if m.status in ("lago_short", "lago_over", "healed")],
                "settling": sum(1 for m in self.metrics if m.status == "settling"),
                "healed_events": sum(m.healed_events for m in self.metrics), "skipped": self.skipped}


def lago_period(usage: CurrentUsage) -> Period:
    """Lago's current billing period; its end (23:59:59 in the answer) runs to the last millisecond."""
    return Period(parse_rfc3339_ms(usage.from_datetime), parse_rfc3339_ms(usage.to_datetime) + 999)


class Reconciler:
    def __init__(self, js: Any, store: TotalsStore, lago: LagoApi, nats: NatsSettings, settings: ReconcileSettings,
                 tokens_property: str, deadline: float):
        self.js, self.store, self.lago, self.nats, self.settings = js, store, lago, nats, settings
        self.tokens_property, self.deadline = tokens_property, deadline
        now = datetime.now(UTC)
        self.result = Reconciliation(checked_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        self.settled_by_ms = int(now.timestamp() * 1000) - int(settings.settle_seconds * 1000)
        self._customers: dict[str, str] | None = None  # from Lago's subscription list, when that is cheaper
        self._customers_lock = asyncio.Lock()
        self._due = 0
        self.shipped_through = 0  # the last ledger seq lago_sync has been handed, read when the pass begins

    async def run(self) -> Reconciliation:
        self.shipped_through = await shipped_through(self.js, self.nats.stream, self.nats.consumer)
        checkpoint, _ = await self.store.checkpoint()
        due = await self.store.due()
        self._due = len(due)
        # Begin after the subscription the last pass ended on, so that every one gets its turn.
        after = [d for d in due if key_token(d[0]) > checkpoint.cursor]
        order = after + [d for d in due if key_token(d[0]) <= checkpoint.cursor]
        slots = asyncio.Semaphore(self.settings.concurrency)
        reached = [-1]  # the furthest place in ``order`` checked

        async def check(place: int, subscription: str, revision: int) -> None:
            async with slots:
                if time.monotonic() > self.deadline:
                    self.result.waiting += 1
                    return
                if await self._check(subscription, checkpoint.complete_from_ms):
                    await self.store.clear_due(subscription, revision)
                self.result.checked += 1
                reached[0] = max(reached[0], place)

        await asyncio.gather(*(check(i, s, r) for i, (s, r) in enumerate(order)))
        if reached[0] >= 0:
            cursor = key_token(order[reached[0]][0])
            await self.store.change(CHECKPOINT, Checkpoint.from_json, lambda c: setattr(c, "cursor", cursor))
        return self.result

    async def _check(self, subscription: str, complete_from_ms: int | None) -> bool:
        """Check one subscription; True when it has come to rest (no longer due)."""
        sub, revision = await self.store.subscription(subscription)
        try:
            usage = await self._current_usage(sub, revision)
        except LagoUnavailable as exc:
            self.result.skipped[subscription] = str(exc)
            return False
        if isinstance(usage, str):
            self.result.skipped[subscription] = usage
            return True
        period = lago_period(usage)
        if complete_from_ms and period.start_ms < complete_from_ms:
            self.result.skipped[subscription] = ("the ledger had already dropped events of this period when the "
                                                 "totals began (NATS_STREAM_MAX_AGE_DAYS)")
            return True
        edges = await self.store.days(subscription, edge_days(period))
        lago_units = _units_by_code(usage)
        at_rest = True
        for code, row in sorted(period_totals(sub, edges, period, self.settled_by_ms, self.shipped_through).items()):
            drift = MetricDrift(subscription, code, _decimal(plus(row.certain, -row.unsettled)), _decimal(row.possible),
                                lago_units.get(code), unsettled_events=row.unsettled_events)
            if drift.status == "lago_short":
                try:
                    await self._heal(drift, sub, edges, period)
                except LagoUnavailable as exc:
                    self.result.skipped[subscription] = f"healing: {exc}"
            self.result.metrics.append(drift)
            at_rest = at_rest and drift.status in _AT_REST and not drift.unsettled_events
        return at_rest

    async def _current_usage(self, sub: SubscriptionTotals, revision: int) -> CurrentUsage | str:
        """Lago's current usage of the subscription, or why there is none; the customer is looked up once."""
        if sub.customer:
            try:
                return await self.lago.current_usage(sub.customer, sub.subscription)
            except LagoUnavailable as exc:
                if exc.status not in (404, 405):  # the customer or subscription changed: look it up again
                    raise
        customer = (await self._listed_customers()).get(sub.subscription)
        if customer is None or customer == sub.customer:
            found = await self.lago.subscription(sub.subscription)
            if found is None:
                return "unknown to Lago"
            if found.status != "active":
                return f"subscription {found.status}: no current usage"
            customer = found.external_customer_id
        if customer != sub.customer:
            await self.store.change(subscription_key(sub.subscription), lambda d: SubscriptionTotals.from_json(
                sub.subscription, d), lambda doc: setattr(doc, "customer", customer), known=(sub, revision))
        return await self.lago.current_usage(customer, sub.subscription)

    async def _listed_customers(self) -> dict[str, str]:
        """Every active subscription's customer, from Lago's list (100 a page), when there are fewer pages than
        due subscriptions to look up one by one (a first pass); else nothing."""
        async with self._customers_lock:
            if self._customers is None:
                self._customers = {}
                first, pages = await self.lago.active_subscriptions(1)
                if pages * 4 <= self._due:
                    self._customers.update(first)
                    for page in range(2, pages + 1):
                        self._customers.update((await self.lago.active_subscriptions(page))[0])
        return self._customers

    async def _heal(self, drift: MetricDrift, sub: SubscriptionTotals, edges: dict[str, Any], period: Period) -> None:
        found = await narrow(self.js, self.store, self.lago, self.nats, self.settings.dead_letter_stream, sub, edges,
                             period, drift.code, (self.settled_by_ms, self.shipped_through), self.tokens_property,
                             self.deadline)
        copied = _decimal(found.copied_units)
        drift.ledger, drift.ledger_all, drift.duplicate_copies = drift.ledger - copied, drift.ledger_all - copied, \
            found.copies
        if self.settings.heal and found.missing:
            drift.healed_events = await reship(self.lago, found.missing, self.deadline)


def _units_by_code(usage: CurrentUsage) -> dict[str, Decimal]:
    """Lago's units per metric code. Every charge on a metric aggregates all its events (filters only
    split them), so two charges on one metric each show the whole."""
    units: dict[str, Decimal] = {}
    for charge in usage.charges_usage:
        units[charge.code] = max(units.get(charge.code, Decimal(0)), charge.units)
    return units


async def reship(lago: LagoApi, events: list[UsageEvent], deadline: float) -> int:
    """Ship events again; returns how many Lago took (on ClickHouse a copy it held also counts)."""
    stored = 0
    for chunk in chunks_of([(None, e) for e in events]):
        if time.monotonic() > deadline:
            break
        stored += len((await lago.ship([e for _, e in chunk], deadline=deadline)).stored)
    return stored


def _decimal(units: Any) -> Decimal:
    return Decimal(units) if isinstance(units, int) else Decimal(str(units))


def plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros, as the reports show units."""
    return format(value.normalize(), "f") if value else "0"
