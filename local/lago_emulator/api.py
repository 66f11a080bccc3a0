"""The emulator's API: authentication, permissions, and Lago's answer for each route."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import resources, rules
from .errors import ApiError, bad_request, forbidden, method_not_allowed, not_found, unauthorized, validation_error
from .routing import match
from .store import Store
from .usage import UsageSettings, current_usage

Permissions = dict[str, list[str]] | None  # resource -> modes; None: every permission


@dataclass
class EmulatorSettings:
    api_keys: dict[str, Permissions] = field(default_factory=dict)
    clock: datetime | None = None  # fixed "now" for billing periods and subscription status
    usage: UsageSettings = field(default_factory=UsageSettings)


class Emulator:
    """Routes and state; the HTTP handler only moves bytes."""

    def __init__(self, store: Store, settings: EmulatorSettings):
        self.store, self.settings = store, settings
        self.lock = threading.Lock()

    @property
    def event_store(self) -> str:
        return self.store.event_store

    def now(self) -> datetime:
        return self.settings.clock or datetime.now(UTC)

    def authorized(self, authorization: str | None) -> bool:
        return self._key(authorization) is not None

    def _key(self, authorization: str | None) -> str | None:
        token = (authorization or "").split(" ")
        key = token[1] if len(token) > 1 else None
        return key if key in self.settings.api_keys else None

    def handle(self, method: str, raw_path: str, query: dict[str, list[str]], authorization: str | None,
               body: Any) -> tuple[int, dict[str, Any]]:
        route = match(method, raw_path)  # Rails routes before the controller authenticates
        key = self._key(authorization)
        if key is None:
            raise unauthorized()
        mode = "read" if method == "GET" else "write"
        permissions = self.settings.api_keys[key]
        if permissions is not None and mode not in permissions.get(route.resource, []):
            raise forbidden(f"{mode}_action_not_allowed_for_{route.resource}")
        return getattr(self, route.action)(*route.params, query=query, body=body)

    # --- events ---
    def create_event(self, *, query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        row, errors = rules.accept_one(self.store, _root(body, "event"))
        if errors is not None:
            raise validation_error(errors)
        return 200, {"event": rules.event_response(row)}

    def create_batch(self, *, query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        events = body.get("events") if isinstance(body, dict) else None
        # Strong parameters keep only the array's objects.
        events = [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []
        if not events:
            raise validation_error({"events": ["no_events"]})
        if len(events) > rules.MAX_BATCH:
            raise validation_error({"events": ["too_many_events"]})
        rows, errors = rules.accept_batch(self.store, events)
        if errors:
            raise validation_error(errors)
        return 200, {"events": [rules.event_response(r) for r in rows]}

    def _visible_by(self) -> int | None:
        """On ClickHouse, events reach the raw table through Kafka: they show up after the delay."""
        delay = self.settings.usage.delay_ms
        return int(time.time() * 1000) - delay if self.event_store == "clickhouse" and delay else None

    def find_event(self, transaction_id: str, *, query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        rows = self.store.events(transaction_id=transaction_id, accepted_by_ms=self._visible_by(), limit=1)
        if not rows:
            raise not_found("event")
        return 200, {"event": rules.event_response(rows[0])}

    def list_events(self, *, query: dict[str, list[str]], body: Any) -> tuple[int, dict[str, Any]]:
        def one(name: str) -> str | None:
            return (query.get(name) or [None])[0]

        try:
            page, per_page = max(int(one("page") or 1), 1), max(int(one("per_page") or 100), 1)
        except ValueError:
            raise validation_error({"page": ["value_is_invalid"]}) from None
        stamps = []
        for name in ("timestamp_from", "timestamp_to"):
            moment = resources.parse_time(one(name)) if one(name) else None
            if one(name) and moment is None:
                raise validation_error({name: ["invalid_date"]})
            stamps.append(int(moment.timestamp() * 1000) if moment else None)
        filters = {"subscription": one("external_subscription_id"), "code": one("code"), "from_ms": stamps[0],
                   "to_ms": stamps[1], "accepted_by_ms": self._visible_by()}
        # Postgres: timestamp desc, transaction_id asc; ClickHouse events_raw: ingested_at desc.
        order = "timestamp_ms DESC, transaction_id ASC" if self.event_store == "postgres" else "accepted_ms DESC, seq DESC"
        rows = self.store.events(**filters, order=order, limit=per_page, offset=(page - 1) * per_page)
        total = self.store.count_events(**filters)
        pages = -(-total // per_page)
        return 200, {"events": [rules.event_response(r) for r in rows],
                     "meta": {"current_page": page, "next_page": page + 1 if page < pages else None,
                              "prev_page": page - 1 if page > 1 else None, "total_pages": pages, "total_count": total}}

    # --- billing objects ---
    def create_metric(self, *, query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        return 200, {"billable_metric": resources.create_metric(self.store, _root(body, "billable_metric"))}

    def find_metric(self, code: str, *, query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        return 200, {"billable_metric": self._get("billable_metric", code)}

    def create_plan(self, *, query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        return 200, {"plan": resources.create_plan(self.store, _root(body, "plan"))}

    def find_plan(self, code: str, *, query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        return 200, {"plan": self._get("plan", code)}

    def create_customer(self, *, query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        return 200, {"customer": resources.upsert_customer(self.store, _root(body, "customer"))}

    def find_customer(self, external_id: str, *, query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        return 200, {"customer": self._get("customer", external_id)}

    def create_subscription(self, *, query: Any, body: Any) -> tuple[int, dict[str, Any]]:
        with self.lock:
            doc = resources.create_subscription(self.store, _root(body, "subscription"), self.now())
        return 200, {"subscription": resources.subscription_response(self.store, doc, self.now())}

    def find_subscription(self, external_id: str, *, query: dict[str, list[str]], body: Any) -> tuple[int, dict[str, Any]]:
        status = (query.get("status") or ["active"])[0]
        doc = resources.find_subscription(self.store, external_id, status, self.now())
        if doc is None:
            raise not_found("subscription")
        return 200, {"subscription": resources.subscription_response(self.store, doc, self.now())}

    def terminate_subscription(self, external_id: str, *, query: dict[str, list[str]], body: Any) -> tuple[int, dict[str, Any]]:
        status = "pending" if (query.get("status") or [""])[0] == "pending" else "active"
        with self.lock:
            doc = resources.find_subscription(self.store, external_id, status, self.now())
            if doc is None:
                raise not_found("subscription")
            doc = resources.terminate(self.store, doc, self.now())
        return 200, {"subscription": resources.subscription_response(self.store, doc, self.now())}

    # --- usage ---
    def current_usage(self, customer_id: str, *, query: dict[str, list[str]], body: Any) -> tuple[int, dict[str, Any]]:
        if self.store.get("customer", customer_id) is None:
            raise not_found("customer")
        now = self.now()
        subscription = resources.find_subscription(self.store, (query.get("external_subscription_id") or [""])[0],
                                                   "active", now)
        if subscription is None or subscription["external_customer_id"] != customer_id:
            raise method_not_allowed("no_active_subscription")
        plan = self.store.get("plan", subscription["plan_code"]) or {}
        period = resources.period_of(self.store, subscription, now)
        usage = current_usage(self.store, subscription, plan, period, self.settings.usage, int(time.time() * 1000))
        return 200, {"customer_usage": usage}

    # --- lists (paginated as Lago's index routes) ---
    def list_metrics(self, *, query: dict[str, list[str]], body: Any) -> tuple[int, dict[str, Any]]:
        return 200, _page(self.store.all("billable_metric"), "billable_metrics", query)

    def list_plans(self, *, query: dict[str, list[str]], body: Any) -> tuple[int, dict[str, Any]]:
        return 200, _page(self.store.all("plan"), "plans", query)

    def list_customers(self, *, query: dict[str, list[str]], body: Any) -> tuple[int, dict[str, Any]]:
        return 200, _page(self.store.all("customer"), "customers", query)

    def list_subscriptions(self, *, query: dict[str, list[str]], body: Any) -> tuple[int, dict[str, Any]]:
        """Only active subscriptions unless ``status[]`` says otherwise (subscription_index.rb)."""
        statuses = set(query.get("status[]") or query.get("status") or ["active"])
        wanted = {key: (query.get(key) or [None])[0] for key in ("external_customer_id", "plan_code", "external_id")}
        now = self.now()
        docs = [resources.subscription_response(self.store, d, now) for d in resources.all_subscriptions(self.store, now)
                if d["status"] in statuses and all(v is None or d[k] == v for k, v in wanted.items())]
        return 200, _page(docs, "subscriptions", query)

    def _get(self, kind: str, key: str) -> dict[str, Any]:
        doc = self.store.get(kind, key)
        if doc is None:
            raise not_found(kind)
        return doc


def _page(items: list[dict[str, Any]], name: str, query: dict[str, list[str]]) -> dict[str, Any]:
    try:
        page = max(int((query.get("page") or [1])[0]), 1)
        per_page = max(int((query.get("per_page") or [100])[0]), 1)
    except ValueError:
        raise validation_error({"page": ["value_is_invalid"]}) from None
    pages = -(-len(items) // per_page)
    return {name: items[(page - 1) * per_page : page * per_page],
            "meta": {"current_page": page, "next_page": page + 1 if page < pages else None,
                     "prev_page": page - 1 if page > 1 else None, "total_pages": pages, "total_count": len(items)}}


def _root(body: Any, key: str) -> dict[str, Any]:
    """params.require(key): a missing or empty root is 400."""
    if not isinstance(body, dict) or not isinstance(body.get(key), dict) or not body[key]:
        raise bad_request(f"param is missing or the value is empty: {key}")
    return body[key]


__all__ = ["ApiError", "Emulator", "EmulatorSettings"]
