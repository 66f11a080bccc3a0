"""Billing objects as lago-api's create services check them: metrics, plans, customers, subscriptions.

- Plans take charges by ``billable_metric_id`` only (plans_controller permits nothing else); an id
  Lago does not know is 404 ``billable_metrics_not_found``, none at all 404 ``billable_metric_not_found``.
- A charge filter's keys must be filters of the charge's metric and its values among that filter's
  values (or ``["__ALL_FILTER_VALUES__"]``): else 422, as ChargeFilterValue#validate_values answers.
- Customers carry a timezone (IANA); periods are computed in it (``applicable_timezone``, else UTC).
- A subscription is ``pending`` until its ``subscription_at`` (in the customer's timezone, by date),
  then ``active`` from that instant; DELETE terminates it now; ``ending_at`` terminates it then.
  Creating one for an unknown customer creates the customer, as the API does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import not_found, validation_error
from .periods import INTERVALS, charges_period
from .store import Store, new_id, now_iso
from .usage import ALL_FILTER_VALUES

AGGREGATIONS = {"count_agg", "sum_agg", "max_agg", "unique_count_agg"}
CHARGE_MODELS = {"standard", "graduated", "package"}
BILLING_TIMES = ("calendar", "anniversary")


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 date-time (a time without offset is UTC), None if it is not one."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(moment: datetime | None, millis: bool = False) -> str | None:
    if moment is None:
        return None
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}Z" if millis else f"{text}Z"


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def create_metric(store: Store, metric: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    for field in ("name", "code"):
        if _blank(metric.get(field)):
            errors[field] = ["value_is_mandatory"]
    if "code" not in errors and store.get("billable_metric", metric["code"]):
        errors["code"] = ["value_already_exist"]
    if metric.get("aggregation_type") not in AGGREGATIONS:
        errors["aggregation_type"] = ["value_is_invalid"]
    elif metric["aggregation_type"] != "count_agg" and _blank(metric.get("field_name")):
        errors["field_name"] = ["value_is_mandatory"]
    filters = metric.get("filters") or []
    if not isinstance(filters, list) or not all(
            isinstance(f, dict) and not _blank(f.get("key")) and isinstance(f.get("values"), list) and f["values"]
            for f in filters):
        errors["filters"] = ["value_is_invalid"]
    if errors:
        raise validation_error(errors)
    doc = {"lago_id": new_id(), "name": metric["name"], "code": metric["code"], "description": metric.get("description"),
           "recurring": bool(metric.get("recurring")), "rounding_function": None, "rounding_precision": None,
           "aggregation_type": metric["aggregation_type"], "weighted_interval": None,
           "expression": metric.get("expression"), "field_name": metric.get("field_name"), "created_at": now_iso(),
           "filters": [{"key": f["key"], "values": [str(v) for v in f["values"]]} for f in filters]}
    store.put("billable_metric", doc["code"], doc)
    return doc


def create_plan(store: Store, plan: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    for field in ("name", "code", "amount_currency"):
        if _blank(plan.get(field)):
            errors[field] = ["value_is_mandatory"]
    if plan.get("amount_cents") is None:
        errors["amount_cents"] = ["value_is_mandatory"]
    if plan.get("interval") not in INTERVALS:
        errors["interval"] = ["value_is_invalid"]
    if "code" not in errors and store.get("plan", plan["code"]):
        errors["code"] = ["value_already_exist"]
    if errors:
        raise validation_error(errors)
    metrics = {m["lago_id"]: m for m in store.all("billable_metric")}
    charges_in = plan.get("charges") or []
    ids = {c.get("billable_metric_id") for c in charges_in} - {None}
    if ids - set(metrics):
        raise not_found("billable_metrics")
    charges = [_charge(charge, metrics.get(charge.get("billable_metric_id"))) for charge in charges_in]
    monthly_option = plan["interval"] in ("yearly", "semiannual")
    doc = {"lago_id": new_id(), "name": plan["name"], "invoice_display_name": plan.get("invoice_display_name"),
           "created_at": now_iso(), "code": plan["code"], "interval": plan["interval"],
           "description": plan.get("description"), "amount_cents": plan["amount_cents"],
           "amount_currency": plan["amount_currency"], "pay_in_advance": bool(plan.get("pay_in_advance")),
           "bill_charges_monthly": bool(plan.get("bill_charges_monthly")) if monthly_option else None,
           "charges": charges}
    store.put("plan", doc["code"], doc)
    return doc


def _charge(charge: dict[str, Any], metric: dict[str, Any] | None) -> dict[str, Any]:
    if metric is None:
        raise not_found("billable_metric")
    if charge.get("charge_model") not in CHARGE_MODELS:
        raise validation_error({"charge_model": ["value_is_invalid"]})
    defined = {f["key"]: f["values"] for f in metric["filters"]}
    filters = []
    for charge_filter in charge.get("filters") or []:
        values = charge_filter.get("values") if isinstance(charge_filter, dict) else None
        if not values or not isinstance(values, dict):
            raise validation_error({"values": ["value_is_mandatory"]})
        for key, allowed in values.items():
            allowed = allowed if isinstance(allowed, list) else [allowed]
            if key not in defined:
                raise validation_error({"billable_metric_filter": ["relation_must_exist"], "values": ["value_is_invalid"]})
            if not allowed or not (allowed == [ALL_FILTER_VALUES] or all(str(v) in defined[key] for v in allowed)):
                raise validation_error({"values": ["value_is_invalid"]})
        filters.append({"invoice_display_name": charge_filter.get("invoice_display_name"),
                        "properties": charge_filter.get("properties") or {},
                        "values": {k: [str(v) for v in (a if isinstance(a, list) else [a])] for k, a in values.items()}})
    return {"lago_id": new_id(), "code": charge.get("code") or metric["code"], "lago_billable_metric_id": metric["lago_id"],
            "billable_metric_code": metric["code"], "created_at": now_iso(), "charge_model": charge["charge_model"],
            "pay_in_advance": bool(charge.get("pay_in_advance")), "invoiceable": True,
            "invoice_display_name": charge.get("invoice_display_name"), "properties": charge.get("properties") or {},
            "filters": filters}


def upsert_customer(store: Store, customer: dict[str, Any]) -> dict[str, Any]:
    if _blank(customer.get("external_id")):
        raise validation_error({"external_id": ["value_is_mandatory"]})
    timezone = customer.get("timezone")
    if timezone is not None and not _valid_timezone(timezone):
        raise validation_error({"timezone": ["invalid_timezone"]})
    existing = store.get("customer", customer["external_id"]) or {"lago_id": new_id(), "created_at": now_iso()}
    doc = {**existing, **{k: v for k, v in customer.items() if v is not None}, "updated_at": now_iso()}
    doc["applicable_timezone"] = doc.get("timezone") or "UTC"
    store.put("customer", doc["external_id"], doc)
    return doc


def _valid_timezone(name: Any) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return False
    return True


def create_subscription(store: Store, subscription: dict[str, Any], now: datetime) -> dict[str, Any]:
    customer_id = str(subscription.get("external_customer_id") or "").strip()
    plan = store.get("plan", subscription.get("plan_code") or "")
    if plan is None:
        raise not_found("plan")
    if not customer_id:
        raise validation_error({"external_customer_id": ["value_is_mandatory"]})
    at = parse_time(subscription["subscription_at"]) if subscription.get("subscription_at") is not None else now
    errors = {}
    if at is None:
        errors["subscription_at"] = ["invalid_date"]
    billing_time = subscription.get("billing_time") or "calendar"
    if billing_time not in BILLING_TIMES:
        errors["billing_time"] = ["value_is_invalid"]
    external_id = str(subscription.get("external_id") or "").strip()
    if not external_id:
        errors["external_id"] = ["value_is_mandatory"]
    if errors:
        raise validation_error(errors)
    customer = store.get("customer", customer_id) or upsert_customer(store, {"external_id": customer_id})
    current = find_subscription(store, external_id, "active", now)
    if current is not None:
        if current["external_customer_id"] == customer_id and current["plan_code"] == plan["code"]:
            return current
        raise validation_error({"external_id": ["value_already_exist"]})
    zone = ZoneInfo(customer["applicable_timezone"])
    pending = at.astimezone(zone).date() > now.astimezone(zone).date()
    ending = parse_time(subscription.get("ending_at"))
    doc = {"lago_id": new_id(), "lago_customer_id": customer["lago_id"], "external_customer_id": customer_id,
           "external_id": external_id, "plan_code": plan["code"], "name": subscription.get("name"),
           "status": "pending" if pending else "active", "billing_time": billing_time, "subscription_at": iso(at),
           "started_at": None if pending else iso(at, millis=True), "created_at": now_iso(), "canceled_at": None,
           "terminated_at": None, "ending_at": iso(ending), "plan_amount_cents": plan["amount_cents"],
           "plan_amount_currency": plan["amount_currency"]}
    _save(store, doc)
    return doc


def _save(store: Store, doc: dict[str, Any]) -> None:
    """Subscriptions are kept by lago_id, with an index of every one an external id has named."""
    store.put("subscription", doc["lago_id"], doc)
    ids = store.get("subscription_ids", doc["external_id"]) or {"lago_ids": []}
    if doc["lago_id"] not in ids["lago_ids"]:
        store.put("subscription_ids", doc["external_id"], {"lago_ids": [*ids["lago_ids"], doc["lago_id"]]})


def find_subscription(store: Store, external_id: str, status: str, now: datetime) -> dict[str, Any] | None:
    """The subscription with ``external_id`` in ``status`` (after any change the clock has made)."""
    found = []
    for lago_id in (store.get("subscription_ids", external_id) or {"lago_ids": []})["lago_ids"]:
        doc = _advance(store, store.get("subscription", lago_id), now)
        if doc and doc["status"] == status:
            found.append(doc)
    # subscriptions_controller#show: terminated_at DESC NULLS FIRST, started_at DESC
    found.sort(key=lambda d: (d["terminated_at"] is None, d["terminated_at"] or "", d["started_at"] or ""), reverse=True)
    return found[0] if found else None


def all_subscriptions(store: Store, now: datetime) -> list[dict[str, Any]]:
    """Every subscription as the clock has left it, newest ``subscription_at`` first (SubscriptionsQuery)."""
    docs = [_advance(store, doc, now) for doc in store.all("subscription")]
    return sorted((d for d in docs if d), key=lambda d: (d["subscription_at"] or "", d["created_at"]), reverse=True)


def _advance(store: Store, doc: dict[str, Any] | None, now: datetime) -> dict[str, Any] | None:
    """What Lago's clock jobs would have done by ``now``: activate on subscription_at, end on ending_at."""
    if doc is None:
        return None
    changed = dict(doc)
    at = parse_time(doc["subscription_at"])
    if changed["status"] == "pending" and at is not None and at <= now:
        changed.update(status="active", started_at=iso(at, millis=True))
    ending = parse_time(doc.get("ending_at"))
    if changed["status"] == "active" and ending is not None and ending <= now:
        changed.update(status="terminated", terminated_at=iso(ending))
    if changed != doc:
        store.put("subscription", doc["lago_id"], changed)
    return changed


def terminate(store: Store, subscription: dict[str, Any], now: datetime) -> dict[str, Any]:
    if subscription["status"] == "pending":
        doc = {**subscription, "status": "canceled", "canceled_at": iso(now)}
    else:
        doc = {**subscription, "status": "terminated", "terminated_at": iso(now)}
    store.put("subscription", doc["lago_id"], doc)
    return doc


def subscription_response(store: Store, doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    """V1::SubscriptionSerializer, with the current billing period of an active subscription."""
    started, ending = None, None
    if doc["status"] == "active":
        period = period_of(store, doc, now)
        started, ending = iso(period.start), iso(period.end)
    return {**doc, "current_billing_period_started_at": started, "current_billing_period_ending_at": ending}


def period_of(store: Store, subscription: dict[str, Any], now: datetime):
    plan = store.get("plan", subscription["plan_code"]) or {}
    customer = store.get("customer", subscription["external_customer_id"]) or {}
    return charges_period(interval=plan.get("interval", "monthly"), billing_time=subscription["billing_time"],
                          subscription_at=parse_time(subscription["subscription_at"]),
                          started_at=parse_time(subscription["started_at"]), now=now,
                          timezone=customer.get("applicable_timezone") or "UTC",
                          bill_charges_monthly=bool(plan.get("bill_charges_monthly")))
