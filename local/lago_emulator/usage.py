"""Current usage: Lago's per-charge, per-filter units and amounts for a subscription's period.

- Period: periods.charges_period (plan interval, billing time, customer timezone).
- Events: those of the subscription and metric code timestamped inside the period; only those accepted
  at least ``delay_ms`` ago (Lago's usage is refreshed asynchronously on both stores).
- ClickHouse store: with deduplication on, copies that share timestamp and transaction_id count once
  (the latest copy wins, as lago-api's DEDUP_KEY_COLUMNS query picks max(enriched_at)); with it off,
  every copy counts.
- Filters: app/services/charge_filters/matching_and_ignored_service.rb. An event counts in a filter
  whose values it matches unless it also matches a more specific filter; identical filters count in
  the oldest; the default bucket (``values: {}``) takes events that match no filter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .periods import Period
from .store import Store

ALL_FILTER_VALUES = "__ALL_FILTER_VALUES__"
FilterValues = dict[str, list[str]]


@dataclass(frozen=True)
class UsageSettings:
    delay_ms: int = 0
    clickhouse_dedup: bool = True


def current_usage(store: Store, subscription: dict[str, Any], plan: dict[str, Any], period: Period,
                  settings: UsageSettings, wall_ms: int) -> dict[str, Any]:
    metrics = {m["lago_id"]: m for m in store.all("billable_metric")}
    currency = plan.get("amount_currency") or "USD"
    charges_usage = []
    for charge in plan.get("charges") or []:
        metric = metrics.get(charge["lago_billable_metric_id"])
        if metric is None:
            continue
        events = store.events(subscription=subscription["external_id"], code=metric["code"], from_ms=period.start_ms,
                              to_ms=period.end_ms, accepted_by_ms=wall_ms - settings.delay_ms)
        if store.event_store == "clickhouse" and settings.clickhouse_dedup:
            events = list({(e["timestamp_ms"], e["transaction_id"]): e for e in events}.values())
        charges_usage.append(_charge_usage(charge, metric, events, currency))
    charges_usage.sort(key=lambda c: c["billable_metric"]["name"].lower())
    amount = sum(c["amount_cents"] for c in charges_usage)
    return {
        "from_datetime": _iso(period.start), "to_datetime": _iso(period.end),
        "issuing_date": period.issuing_date.isoformat(), "lago_invoice_id": None, "currency": currency,
        "amount_cents": amount, "taxes_amount_cents": 0, "total_amount_cents": amount, "charges_usage": charges_usage,
    }


def _charge_usage(charge: dict[str, Any], metric: dict[str, Any], events: list[dict[str, Any]], currency: str) -> dict[str, Any]:
    filters = charge.get("filters") or []
    rows = []
    if filters:
        expanded = [_all_values(f["values"], metric) for f in filters]
        # Events alike in every filtered property match the same filters: each kind is matched once (a filter per
        # model and token type, thousands of events, would otherwise be filters x events matches).
        keys = sorted({key for values in expanded for key in values})
        kinds: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for event in events:
            properties = event["properties"]
            kinds.setdefault(tuple(_text(properties[k]) if k in properties else None for k in keys), []).append(event)

        def matching(test: Any) -> list[dict[str, Any]]:
            return [event for alike in kinds.values() if test(alike[0]) for event in alike]

        for index, charge_filter in enumerate(filters):
            ignored = _ignored(index, filters, expanded)
            bucket = matching(lambda e, index=index, ignored=ignored: _matches(e, expanded[index])
                              and not any(_matches(e, i) for i in ignored))
            rows.append(_priced(bucket, metric, charge["charge_model"], charge_filter.get("properties") or {},
                                charge_filter["values"], charge_filter.get("invoice_display_name")))
        default = matching(lambda e: not any(_matches(e, values) for values in expanded))
        rows.append(_priced(default, metric, charge["charge_model"], charge.get("properties") or {}, {}, None))
        units, amount = sum(Decimal(r["units"]) for r in rows), sum(r["amount_cents"] for r in rows)
        events_count = sum(r["events_count"] for r in rows)
    else:
        whole = _priced(events, metric, charge["charge_model"], charge.get("properties") or {}, {}, None)
        units, amount, events_count = Decimal(whole["units"]), whole["amount_cents"], whole["events_count"]
    return {
        "units": _decimal_str(units), "total_aggregated_units": _decimal_str(units), "events_count": events_count,
        "amount_cents": amount, "amount_currency": currency, "pricing_unit_details": None,
        "charge": {"lago_id": charge["lago_id"], "code": charge.get("code"), "charge_model": charge["charge_model"],
                   "invoice_display_name": charge.get("invoice_display_name")},
        "billable_metric": {k: metric[k] for k in ("lago_id", "name", "code", "aggregation_type")},
        "filters": rows, "grouped_usage": [],
    }


def _all_values(values: FilterValues, metric: dict[str, Any]) -> FilterValues:
    """ChargeFilter#to_h_with_all_values: ``__ALL_FILTER_VALUES__`` stands for every value the metric lists."""
    defined = {f["key"]: f["values"] for f in metric.get("filters") or []}
    return {key: list(defined.get(key, [])) if vals == [ALL_FILTER_VALUES] else list(vals) for key, vals in values.items()}


def _ignored(index: int, filters: list[dict[str, Any]], expanded: list[FilterValues]) -> list[FilterValues]:
    """The filters whose events the filter at ``index`` must leave out (Lago's ignored_filters)."""
    matching, own = expanded[index], filters[index]["values"]
    ignored = []
    for other in range(len(filters)):
        child = expanded[other]
        if other == index or not all(any(v in child.get(k, []) for v in vals) for k, vals in matching.items()):
            continue
        kept = dict(child)
        if sorted(kept) == sorted(matching):
            if all(sorted(v) == sorted(matching[k]) for k, v in kept.items()):
                if other > index:  # identical and newer: the older filter counts the events
                    continue
            elif not all(set(v) <= set(matching[k]) for k, v in kept.items()):
                kept = {k: v if own.get(k) == [ALL_FILTER_VALUES] else [x for x in v if x not in matching[k]]
                        for k, v in kept.items()}
        ignored.append(kept)
    return ignored


def _matches(event: dict[str, Any], values: FilterValues) -> bool:
    properties = event["properties"]
    return all(key in properties and _text(properties[key]) in allowed for key, allowed in values.items())


def _text(value: Any) -> str:
    """A property as Postgres' ``properties ->> key`` reads it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _priced(events: list[dict[str, Any]], metric: dict[str, Any], model: str, properties: dict[str, Any],
            values: FilterValues, name: str | None) -> dict[str, Any]:
    units = aggregate(metric, events)
    return {"invoice_display_name": name, "values": values, "units": _decimal_str(units),
            "total_aggregated_units": _decimal_str(units), "amount_cents": amount_cents(model, properties, units),
            "events_count": len(events), "pricing_unit_details": None}


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
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _decimal_str(value: Decimal) -> str:
    text = format(value.normalize(), "f") if value else "0.0"
    return text if "." in text else f"{text}.0"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
