"""The emulator's HTTP server: Lago's routes, auth and error shapes, plus fault injection."""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from . import rules
from .store import Store, new_id, now_iso
from .usage import current_usage

AGGREGATIONS = {"count_agg", "sum_agg", "max_agg", "unique_count_agg"}
CHARGE_MODELS = {"standard", "graduated", "package"}


@dataclass
class Faults:
    """Faults applied to /api/v1 requests; set at start or with POST /admin/faults."""

    error_rate: float = 0.0  # answer 500 before doing anything
    rate_limit_next: int = 0  # answer the next N requests 429
    rate_limit_reset: int = 1  # seconds, in X-RateLimit-Reset
    latency_ms: int = 0  # added before every answer
    drop_rate: float = 0.0  # close the connection without answering, before doing anything
    drop_after_store_rate: float = 0.0  # store, then close the connection without answering
    seed: int | None = None


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]):
        self.status, self.body = status, body


def validation_error(details: dict[str, Any]) -> ApiError:
    return ApiError(422, {"status": 422, "error": "Unprocessable Entity", "code": "validation_errors",
                          "error_details": details})


def not_found(what: str) -> ApiError:
    return ApiError(404, {"status": 404, "error": "Not Found", "code": f"{what}_not_found"})


class Emulator:
    """Routes and state; the HTTP handler below only moves bytes."""

    def __init__(self, store: Store, api_key: str, faults: Faults | None = None, clock: datetime | None = None):
        self.store, self.api_key, self.clock = store, api_key, clock
        self.faults = faults or Faults()
        self.random = random.Random(self.faults.seed)
        self.lock = threading.Lock()
        self.requests = 0

    def now(self) -> datetime:
        return self.clock or datetime.now(UTC)

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, dict[str, Any]]:
        parts = [unquote(p) for p in path.strip("/").split("/")][2:]  # after api/v1
        match (method, parts):
            case ("POST", ["events"]):
                return self.create_event(body)
            case ("POST", ["events", "batch"]):
                return self.create_batch(body)
            case ("GET", ["events"]):
                return self.list_events(query)
            case ("GET", ["events", transaction_id]):
                rows = self.store.events(transaction_id=transaction_id, limit=1)
                if not rows:
                    raise not_found("event")
                return 200, {"event": rules.event_response(rows[0], self.store)}
            case ("POST", ["billable_metrics"]):
                return self.create_metric(_root(body, "billable_metric"))
            case ("GET", ["billable_metrics", code]):
                return 200, {"billable_metric": self._get("billable_metric", code)}
            case ("POST", ["plans"]):
                return self.create_plan(_root(body, "plan"))
            case ("GET", ["plans", code]):
                return 200, {"plan": self._get("plan", code)}
            case ("POST", ["customers"]):
                return self.create_customer(_root(body, "customer"))
            case ("GET", ["customers", external_id]):
                return 200, {"customer": self._get("customer", external_id)}
            case ("GET", ["customers", external_id, "current_usage"]):
                return self.usage(external_id, (query.get("external_subscription_id") or [""])[0])
            case ("POST", ["subscriptions"]):
                return self.create_subscription(_root(body, "subscription"))
            case ("GET", ["subscriptions", external_id]):
                return 200, {"subscription": self._get("subscription", external_id)}
        raise ApiError(404, {"status": 404, "error": "Not Found", "code": "route_not_found"})

    def create_event(self, body: Any) -> tuple[int, dict[str, Any]]:
        rows, errors = rules.accept_events(self.store, [_root(body, "event")])
        if errors:
            raise validation_error(errors["0"])
        return 200, {"event": rules.event_response(rows[0], self.store)}

    def create_batch(self, body: Any) -> tuple[int, dict[str, Any]]:
        events = body.get("events") if isinstance(body, dict) else None
        if not isinstance(events, list) or not events:
            raise validation_error({"events": ["no_events"]})
        if len(events) > rules.MAX_BATCH:
            raise validation_error({"events": ["too_many_events"]})
        rows, errors = rules.accept_events(self.store, events)
        if errors:
            raise validation_error(errors)
        subscriptions: dict[str, Any] = {}
        return 200, {"events": [rules.event_response(r, self.store, subscriptions) for r in rows]}

    def list_events(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        def one(name: str) -> str | None:
            return (query.get(name) or [None])[0]

        page, per_page = int(one("page") or 1), min(int(one("per_page") or 20), 100)
        stamps = [_iso_ms(one(name)) for name in ("timestamp_from", "timestamp_to")]
        rows = self.store.events(subscription=one("external_subscription_id"), code=one("code"), from_ms=stamps[0],
                                 to_ms=stamps[1], limit=per_page + 1, offset=(page - 1) * per_page)
        more = len(rows) > per_page
        return 200, {"events": [rules.event_response(r, self.store) for r in rows[:per_page]],
                     "meta": {"current_page": page, "next_page": page + 1 if more else None,
                              "prev_page": page - 1 if page > 1 else None}}

    def create_metric(self, metric: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        errors = {}
        if not metric.get("code"):
            errors["code"] = ["value_is_mandatory"]
        elif self.store.get("billable_metric", metric["code"]):
            errors["code"] = ["value_already_exist"]
        if metric.get("aggregation_type") not in AGGREGATIONS:
            errors["aggregation_type"] = ["value_is_invalid"]
        elif metric["aggregation_type"] != "count_agg" and not metric.get("field_name"):
            errors["field_name"] = ["value_is_mandatory"]
        if errors:
            raise validation_error(errors)
        doc = {"lago_id": new_id(), "name": metric.get("name") or metric["code"], "code": metric["code"],
               "description": metric.get("description"), "recurring": False, "rounding_function": None,
               "rounding_precision": None, "aggregation_type": metric["aggregation_type"],
               "weighted_interval": None, "expression": None, "field_name": metric.get("field_name"),
               "created_at": now_iso(), "filters": metric.get("filters") or []}
        self.store.put("billable_metric", doc["code"], doc)
        return 200, {"billable_metric": doc}

    def create_plan(self, plan: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not plan.get("code"):
            raise validation_error({"code": ["value_is_mandatory"]})
        metrics = {m["lago_id"]: m for m in self.store.all("billable_metric")}
        charges = []
        for index, charge in enumerate(plan.get("charges") or []):
            metric = metrics.get(charge.get("billable_metric_id")) or self.store.get(
                "billable_metric", charge.get("billable_metric_code") or "")
            if metric is None:
                raise not_found("billable_metric")
            if charge.get("charge_model") not in CHARGE_MODELS:
                raise validation_error({f"charges.{index}.charge_model": ["value_is_invalid"]})
            charges.append({
                "lago_id": new_id(), "lago_billable_metric_id": metric["lago_id"], "billable_metric_code": metric["code"],
                "created_at": now_iso(), "charge_model": charge["charge_model"], "pay_in_advance": False,
                "invoiceable": True, "invoice_display_name": charge.get("invoice_display_name"),
                "properties": charge.get("properties") or {},
                "filters": [{"invoice_display_name": f.get("invoice_display_name"), "properties": f.get("properties") or {},
                             "values": f.get("values") or {}} for f in charge.get("filters") or []],
            })
        doc = {"lago_id": new_id(), "name": plan.get("name") or plan["code"], "invoice_display_name": None,
               "created_at": now_iso(), "code": plan["code"], "interval": plan.get("interval") or "monthly",
               "description": plan.get("description"), "amount_cents": plan.get("amount_cents") or 0,
               "amount_currency": plan.get("amount_currency") or "USD", "pay_in_advance": False, "charges": charges}
        self.store.put("plan", doc["code"], doc)
        return 200, {"plan": doc}

    def create_customer(self, customer: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not customer.get("external_id"):
            raise validation_error({"external_id": ["value_is_mandatory"]})
        existing = self.store.get("customer", customer["external_id"]) or {"lago_id": new_id(), "created_at": now_iso()}
        doc = {**existing, **{k: v for k, v in customer.items() if v is not None}, "updated_at": now_iso(),
               "applicable_timezone": "UTC"}
        self.store.put("customer", doc["external_id"], doc)
        return 200, {"customer": doc}

    def create_subscription(self, subscription: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        customer = self.store.get("customer", subscription.get("external_customer_id") or "")
        if customer is None:
            raise not_found("customer")
        plan = self.store.get("plan", subscription.get("plan_code") or "")
        if plan is None:
            raise not_found("plan")
        external_id = subscription.get("external_id") or new_id()
        if self.store.get("subscription", external_id):
            raise validation_error({"external_id": ["value_already_exist"]})
        started = subscription.get("subscription_at") or now_iso()
        doc = {"lago_id": new_id(), "lago_customer_id": customer["lago_id"], "external_customer_id": customer["external_id"],
               "external_id": external_id, "plan_code": plan["code"], "name": subscription.get("name"),
               "status": "active", "billing_time": subscription.get("billing_time") or "calendar",
               "subscription_at": started, "started_at": started, "created_at": now_iso(), "canceled_at": None,
               "terminated_at": None, "ending_at": None}
        self.store.put("subscription", external_id, doc)
        return 200, {"subscription": doc}

    def usage(self, customer_id: str, subscription_id: str) -> tuple[int, dict[str, Any]]:
        subscription = self.store.get("subscription", subscription_id)
        if subscription is None or subscription["external_customer_id"] != customer_id:
            raise not_found("subscription" if self.store.get("customer", customer_id) else "customer")
        return 200, {"customer_usage": current_usage(self.store, subscription, self.now())}

    def _get(self, kind: str, key: str) -> dict[str, Any]:
        doc = self.store.get(kind, key)
        if doc is None:
            raise not_found(kind)
        return doc


def _root(body: Any, key: str) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise ApiError(400, {"status": 400, "error": "BadRequest: param is missing or the value is empty", "code": "bad_request"})
    return body[key]


def _iso_ms(text: str | None) -> int | None:
    if not text:
        return None
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Lago's own server
    emulator: Emulator

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; without this, Nagle's algorithm and the
        # client's delayed ACK hold every kept-alive response back ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def _serve(self, method: str) -> None:
        emulator = self.emulator
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.headers.get("Authorization") != f"Bearer {emulator.api_key}":
            return self._send(401, {"status": 401, "error": "Unauthorized"})
        if url.path.startswith("/admin/"):
            return self._admin(method, url.path, raw)
        if not re.match(r"^/api/v1/", url.path):
            return self._send(404, {"status": 404, "error": "Not Found"})
        faults = emulator.faults
        with emulator.lock:
            emulator.requests += 1
            roll = emulator.random.random()
            limited = faults.rate_limit_next > 0
            if limited:
                faults.rate_limit_next -= 1
            drop_after = emulator.random.random() < faults.drop_after_store_rate
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        if roll < faults.drop_rate:
            return self._drop()
        if limited:
            return self._send(429, {"status": 429, "error": "Too Many Requests"},
                              {"X-RateLimit-Limit": "500", "X-RateLimit-Remaining": "0",
                               "X-RateLimit-Reset": str(faults.rate_limit_reset)})
        if roll < faults.drop_rate + faults.error_rate:
            return self._send(500, {"status": 500, "error": "Internal Server Error"})
        try:
            body = orjson.loads(raw) if raw else None
            status, payload = emulator.route(method, url.path, parse_qs(url.query), body)
        except orjson.JSONDecodeError:
            status, payload = 400, {"status": 400, "error": "BadRequest: invalid JSON", "code": "bad_request"}
        except ApiError as error:
            status, payload = error.status, error.body
        if drop_after and method == "POST":
            return self._drop()
        self._send(status, payload)

    def _admin(self, method: str, path: str, raw: bytes) -> None:
        emulator = self.emulator
        body = json.loads(raw) if raw else {}
        if path == "/admin/faults":
            if method == "POST":
                with emulator.lock:
                    emulator.faults = Faults(**{**asdict(Faults()), **body})
                    emulator.random = random.Random(emulator.faults.seed)
            return self._send(200, asdict(emulator.faults))
        if path == "/admin/delete_events" and method == "POST":
            deleted = emulator.store.delete_events(subscription=body.get("external_subscription_id"),
                                                   transaction_ids=body.get("transaction_ids"), count=body.get("count"))
            return self._send(200, {"deleted": deleted})
        if path == "/admin/stats":
            return self._send(200, {"requests": emulator.requests, "events": emulator.store.count_events()})
        self._send(404, {"status": 404, "error": "Not Found"})

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = orjson.dumps(payload)
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        self.close_connection = True
        self.connection.shutdown(2)


def make_server(host: str, port: int, emulator: Emulator) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"emulator": emulator})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
