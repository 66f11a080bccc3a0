"""Current usage: Lago's per-charge, per-filter units and amounts for a subscription's period."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .store import Store


def calendar_period(now: datetime, started_at: datetime) -> tuple[datetime, datetime]:
    """The calendar month containing ``now``, starting no earlier than the subscription."""
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (start + timedelta(days=32)).replace(day=1)
    return max(start, started_at), following - timedelta(seconds=1)


def current_usage(store: Store, subscription: dict[str, Any], now: datetime) -> dict[str, Any]:
    plan = store.get("plan", subscription["plan_code"]) or {}
    started = datetime.fromisoformat(subscription["started_at"].replace("Z", "+00:00"))
    start, end = calendar_period(now, started)
    from_ms, to_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000) + 999
    currency = plan.get("amount_currency") or "USD"
    charges_usage = []
    for charge in plan.get("charges") or []:
        metric = store.get("billable_metric", charge["billable_metric_code"])
        if metric is None:
            continue
        events = store.events(subscription=subscription["external_id"], code=metric["code"], from_ms=from_ms, to_ms=to_ms)
        charges_usage.append(_charge_usage(charge, metric, events, currency))
    amount = sum(c["amount_cents"] for c in charges_usage)
    return {
        "from_datetime": _iso(start), "to_datetime": _iso(end), "issuing_date": (end + timedelta(days=1)).date().isoformat(),
        "lago_invoice_id": None, "currency": currency, "amount_cents": amount, "taxes_amount_cents": 0,
        "total_amount_cents": amount, "charges_usage": charges_usage,
    }


def _charge_usage(charge: dict[str, Any], metric: dict[str, Any], events: list[dict[str, Any]], currency: str) -> dict[str, Any]:
    filters = charge.get("filters") or []
    buckets: list[list[dict[str, Any]]] = [[] for _ in filters]
    default: list[dict[str, Any]] = []
    for event in events:
        for i, charge_filter in enumerate(filters):
            if _matches(event["properties"], charge_filter.get("values") or {}):
                buckets[i].append(event)
                break
        else:
            default.append(event)
    filter_usage = []
    for charge_filter, bucket in zip(filters, buckets):
        filter_usage.append(_priced(bucket, metric, charge["charge_model"], charge_filter.get("properties") or {},
                                    charge_filter.get("values"), charge_filter.get("invoice_display_name")))
    if filters:
        filter_usage.append(_priced(default, metric, charge["charge_model"], charge.get("properties") or {}, None, None))
        units = sum(Decimal(f["units"]) for f in filter_usage)
        amount = sum(f["amount_cents"] for f in filter_usage)
    else:
        whole = _priced(default, metric, charge["charge_model"], charge.get("properties") or {}, None, None)
        units, amount = Decimal(whole["units"]), whole["amount_cents"]
    return {
        "units": _decimal_str(units), "total_aggregated_units": _decimal_str(units), "events_count": len(events),
        "amount_cents": amount, "amount_currency": currency,
        "charge": {"lago_id": charge["lago_id"], "charge_model": charge["charge_model"],
                   "invoice_display_name": charge.get("invoice_display_name")},
        "billable_metric": {k: metric[k] for k in ("lago_id", "name", "code", "aggregation_type")},
        "filters": filter_usage if filters else [], "grouped_usage": [],
    }


def _priced(events: list[dict[str, Any]], metric: dict[str, Any], model: str, properties: dict[str, Any],
            values: dict[str, list[str]] | None, name: str | None) -> dict[str, Any]:
    units = aggregate(metric, events)
    return {"invoice_display_name": name, "values": values, "units": _decimal_str(units),
            "total_aggregated_units": _decimal_str(units), "amount_cents": amount_cents(model, properties, units),
            "events_count": len(events)}


def _matches(event_properties: dict[str, Any], values: dict[str, list[str]]) -> bool:
    return all(str(event_properties.get(key)) in [str(v) for v in allowed] for key, allowed in values.items())


def aggregate(metric: dict[str, Any], events: list[dict[str, Any]]) -> Decimal:
    kind, field = metric["aggregation_type"], metric.get("field_name")
    if kind == "count_agg":
        return Decimal(len(events))
    if kind == "unique_count_agg":
        return Decimal(len({str(e["properties"].get(field)) for e in events if e["properties"].get(field) is not None}))
    numbers = [_number(e["properties"].get(field)) for e in events]
    numbers = [n for n in numbers if n is not None]
    if kind == "sum_agg":
        return sum(numbers, Decimal(0))
    if kind == "max_agg":
        return max(numbers, default=Decimal(0))
    raise ValueError(f"aggregation {kind} is not emulated")


def amount_cents(model: str, properties: dict[str, Any], units: Decimal) -> int:
    """Price ``units`` with a standard, graduated or package charge, in cents (half up)."""
    if model == "standard":
        amount = units * Decimal(str(properties.get("amount", "0")))
    elif model == "package":
        free = Decimal(str(properties.get("free_units", 0)))
        size = Decimal(str(properties.get("package_size", 1)))
        packages = math.ceil(max(units - free, Decimal(0)) / size) if units > free else 0
        amount = packages * Decimal(str(properties.get("amount", "0")))
    elif model == "graduated":
        amount = Decimal(0)
        for tier in properties.get("graduated_ranges", []):
            low = Decimal(str(tier["from_value"]))
            high = Decimal(str(tier["to_value"])) if tier.get("to_value") is not None else None
            lower_bound = low - 1 if low > 0 else low  # Lago's tiers: 0-100, 101-200, ...
            in_tier = (min(units, high) if high is not None else units) - lower_bound
            if in_tier <= 0:
                continue
            amount += in_tier * Decimal(str(tier.get("per_unit_amount", "0"))) + Decimal(str(tier.get("flat_amount", "0")))
    else:
        raise ValueError(f"charge model {model} is not emulated")
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _decimal_str(value: Decimal) -> str:
    text = format(value.normalize(), "f") if value else "0.0"
    return text if "." in text else f"{text}.0"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
