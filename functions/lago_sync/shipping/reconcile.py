"""Reconciliation: the ledger's totals for each subscription's current Lago period against Lago's
current usage. Lago short -> re-ship the period's events (duplicates answer value_already_exist, so
only the missing land). Lago over -> reported, never deleted."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tokenmeter_core import UsageEvent, parse_rfc3339_ms
from tokenmeter_nats import NatsSettings

from .lago_api import MAX_BATCH, LagoApi, LagoUnavailable
from .ledger import dead_lettered_ids, ledger_events
from .settings import SyncSettings


@dataclass
class MetricDrift:
    subscription: str
    code: str
    ledger: Decimal
    lago: Decimal | None  # None: the plan has no charge on this metric
    healed_events: int = 0

    @property
    def drift(self) -> Decimal:
        return self.ledger - (self.lago or Decimal(0))

    @property
    def status(self) -> str:
        if self.lago is None:
            return "not_in_plan"
        if self.drift == 0:
            return "healed" if self.healed_events else "ok"
        return "lago_short" if self.drift > 0 else "lago_over"

    def as_dict(self) -> dict[str, Any]:
        return {"external_subscription_id": self.subscription, "code": self.code, "ledger_units": plain(self.ledger),
                "lago_units": None if self.lago is None else plain(self.lago), "drift": plain(self.drift),
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
                "drifting": [m.as_dict() for m in self.metrics if m.status != "ok"],
                "healed_events": sum(m.healed_events for m in self.metrics), "skipped": self.skipped}


async def reconcile(js: Any, lago: LagoApi, nats_settings: NatsSettings, settings: SyncSettings,
                    tokens_property: str, deadline: float) -> Reconciliation:
    now = datetime.now(UTC)
    result = Reconciliation(checked_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    since = now - timedelta(days=settings.reconcile_lookback_days)
    ledger = await ledger_events(js, nats_settings.stream, nats_settings.subject_prefix, since)
    never_billed = await dead_lettered_ids(js, settings.dead_letter_stream)
    for subscription_id, events in sorted(ledger.items()):
        if time.monotonic() > deadline:
            result.skipped[subscription_id] = "out of time"
            continue
        try:
            subscription = lago.subscription(subscription_id)
            if subscription is None:
                result.skipped[subscription_id] = "unknown to Lago"
                continue
            usage = lago.current_usage(subscription["external_customer_id"], subscription_id)
        except LagoUnavailable as exc:
            result.skipped[subscription_id] = str(exc)
            continue
        in_period = billable_in_period(events.values(), usage, never_billed)
        lago_units: dict[str, Decimal] = {}
        for charge in usage.charges_usage:
            code = charge.billable_metric.code
            lago_units[code] = lago_units.get(code, Decimal(0)) + Decimal(charge.units)
        for code in sorted({e.code for e in in_period}):
            of_code = [e for e in in_period if e.code == code]
            ledger_units = sum((Decimal(str(e.properties.get(tokens_property, 0))) for e in of_code), Decimal(0))
            drift = MetricDrift(subscription_id, code, ledger_units, lago_units.get(code))
            if drift.lago is not None and drift.drift > 0:
                drift.healed_events = _reship(lago, of_code, deadline)
                if drift.healed_events:
                    try:
                        usage = lago.current_usage(subscription["external_customer_id"], subscription_id)
                    except LagoUnavailable as exc:  # healed, but not re-checked: the next run will
                        result.skipped[subscription_id] = f"re-check after healing: {exc}"
                    else:
                        drift.lago = sum((Decimal(c.units) for c in usage.charges_usage
                                          if c.billable_metric.code == code), Decimal(0))
            result.metrics.append(drift)
    return result


def billable_in_period(events: Iterable[UsageEvent], usage: Any, never_billed: set[str]) -> list[UsageEvent]:
    """The events timestamped inside Lago's current period (``usage``), less those never to be billed."""
    start, end = parse_rfc3339_ms(usage.from_datetime), parse_rfc3339_ms(usage.to_datetime) + 999
    return [e for e in events if start <= event_ms(e.timestamp) <= end and e.transaction_id not in never_billed]


def _reship(lago: LagoApi, events: list[UsageEvent], deadline: float) -> int:
    """Ship the period's events again; only those Lago lacks are stored. Returns how many were."""
    stored = 0
    for start in range(0, len(events), MAX_BATCH):
        if time.monotonic() > deadline:
            break
        stored += len(lago.ship(events[start : start + MAX_BATCH], deadline=deadline).stored)
    return stored


def event_ms(timestamp: str) -> int:
    """A usage event's timestamp (Unix seconds, optional fraction) in milliseconds."""
    whole, _, fraction = timestamp.partition(".")
    return int(whole) * 1000 + int((fraction + "000")[:3])


def plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros, as the reports show units."""
    return format(value.normalize(), "f") if value else "0"
