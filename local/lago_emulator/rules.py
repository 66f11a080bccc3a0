"""Lago's rules for incoming events, on each of its two event stores.

From lago-api: app/services/events/create_batch_service.rb, create_service.rb and app/models/event.rb.
- Validation (both stores, batch): ``transaction_id`` and ``code`` present; ``timestamp`` read with
  ``BigDecimal(value.to_s)`` (missing or false: the time of receipt; anything else unreadable:
  ``invalid_format``); ``properties`` not an object is stored as ``{}``; ``external_subscription_id``
  is not checked at all. Any invalid event fails the whole batch, errors keyed by array index.
- Postgres store: only a valid batch is inserted, with ON CONFLICT DO NOTHING on (subscription,
  transaction_id); the rows that came back are matched to the events by transaction_id alone, so an
  id already stored, or twice in the batch (even for two subscriptions), is ``value_already_exist``
  and the whole batch is rolled back: duplicates come in a second answer, after validation.
- ClickHouse store: a valid batch is produced to Kafka as it is; a duplicate is answered 200. A single
  event is not even validated (no ``save!``).
- A metric with an ``expression`` that cannot be evaluated fails the event with a plain string.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from .expressions import ExpressionError, evaluate
from .store import Store, new_ids, now_iso

MAX_BATCH = 100
_MILLIS = re.compile(r"\d{1,15}(\.\d{3})?")
# Ruby's BigDecimal(): optional sign, digits with single underscores between them, fraction, exponent.
_BIG_DECIMAL = re.compile(r"\s*[-+]?(\d(_?\d)*)?(\.\d(_?\d)*)?([eEdD][-+]?\d+)?\s*")
Errors = dict[str, Any]


def timestamp_ms(value: Any, received_ms: int) -> int | None:
    """The event time in ms, None when Lago answers ``invalid_format``."""
    if value is None or value is False:
        return received_ms
    if isinstance(value, str) and _MILLIS.fullmatch(value):  # the common "1732646400.123", without Decimal
        whole, _, fraction = value.partition(".")
        return int(whole) * 1000 + int(fraction or 0)
    if isinstance(value, dict | list) or value is True:
        return None
    text = str(value)
    match = _BIG_DECIMAL.fullmatch(text)
    if not match or not (match.group(1) or match.group(3)):
        return None
    try:
        number = Decimal(text.strip().replace("_", "").replace("d", "e").replace("D", "e"))
        return int(number * 1000)
    except (InvalidOperation, OverflowError, ValueError):
        return None


def _scalar(value: Any) -> str | None:
    """A permitted scalar parameter as Rails stores it in a string column; objects are not permitted."""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float):
        return str(value)
    return value if isinstance(value, str) else None


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def build_row(event: Any, received_ms: int, lago_id: str | None, created_at: str | None) -> dict[str, Any]:
    """The row Lago would store for one event body (before any validation)."""
    event = event if isinstance(event, dict) else {}
    properties = event.get("properties")
    return {
        "lago_id": lago_id, "transaction_id": _scalar(event.get("transaction_id")),
        "external_subscription_id": _scalar(event.get("external_subscription_id")), "code": _scalar(event.get("code")),
        "timestamp_ms": timestamp_ms(event.get("timestamp"), received_ms),
        "properties": properties if isinstance(properties, dict) else {},
        "precise_total_amount_cents": _scalar(event.get("precise_total_amount_cents")), "created_at": created_at,
        "accepted_ms": received_ms,
    }


def validation_errors(row: dict[str, Any], store: Store, *, batch: bool, presence: bool = True) -> Errors | str | None:
    """Lago's answer for one invalid event, None for a valid one.

    In a batch, ``event.valid?`` runs after the expression and its errors replace the expression's;
    a single event returns on the expression's failure before it is saved (validated).
    """
    if row["timestamp_ms"] is None:
        return {"timestamp": ["invalid_format"]}
    failure = _expression_failure(row, store)
    if failure is not None and not batch:
        return failure
    missing = {field: ["value_is_mandatory"] for field in ("transaction_id", "code") if _blank(row[field])}
    if presence and missing:
        return missing
    return failure


def _expression_failure(row: dict[str, Any], store: Store) -> str | None:
    metric = store.get("billable_metric", row["code"] or "")
    if not metric or not metric.get("expression"):
        return None
    try:
        value = evaluate(metric["expression"], row["properties"], row["timestamp_ms"] // 1000, row["code"])
    except ExpressionError as exc:
        return str(exc)
    row["properties"] = {**row["properties"], metric["field_name"]: value}
    return None


def accept_batch(store: Store, bodies: list[Any]) -> tuple[list[dict[str, Any]], Errors]:
    """(stored rows, {}) or ([], errors by index as a string): one POST /events/batch."""
    received_ms = int(time.time() * 1000)
    postgres = store.event_store == "postgres"
    created_at = now_iso() if postgres else None
    ids: list[str | None] = new_ids(len(bodies)) if postgres else [None] * len(bodies)
    rows = [build_row(body, received_ms, lago_id, created_at) for body, lago_id in zip(bodies, ids)]
    errors = {str(i): e for i, row in enumerate(rows) if (e := validation_errors(row, store, batch=True)) is not None}
    if errors:
        return [], errors
    if not postgres:
        store.insert_events(rows)
        return rows, {}
    with store.lock:
        pairs = [(r["external_subscription_id"], r["transaction_id"]) for r in rows]
        if len({t for _, t in pairs}) == len(rows):
            # The usual batch: insert straight away; the unique index refuses it whole if any is stored.
            with contextlib.suppress(sqlite3.IntegrityError):
                store.insert_events(rows)
                return rows, {}
        errors = _duplicates(pairs, store.existing(pairs))
        if errors:
            return [], errors
        store.insert_events(rows)
    return rows, {}


def _duplicates(pairs: list[tuple[str | None, str]], stored: set[tuple[str | None, str]]) -> Errors:
    """Lago's matching of inserted rows to events by transaction_id alone."""
    inserted: set[tuple[str | None, str]] = set()
    returned: dict[str, int] = {}
    for subscription, transaction in pairs:
        key = (subscription, transaction)
        if subscription is None or (key not in stored and key not in inserted):
            inserted.add(key)
            returned[transaction] = 1  # index_by: one row per transaction id, whichever subscription
    errors: Errors = {}
    for index, (_, transaction) in enumerate(pairs):
        if returned.pop(transaction, None) is None:
            errors[str(index)] = {"transaction_id": ["value_already_exist"]}
    return errors


def accept_one(store: Store, body: Any) -> tuple[dict[str, Any] | None, Errors | str | None]:
    """POST /events: (stored row, None) or (None, error details)."""
    received_ms = int(time.time() * 1000)
    postgres = store.event_store == "postgres"
    row = build_row(body, received_ms, new_ids(1)[0] if postgres else None, now_iso() if postgres else None)
    errors = validation_errors(row, store, batch=False, presence=postgres)
    if errors is not None:
        return None, errors
    if not postgres:
        if not (_blank(row["transaction_id"]) or _blank(row["code"])):  # Kafka takes it; ClickHouse never sees it
            store.insert_events([row])
        return row, None
    try:
        store.insert_events([row])
    except sqlite3.IntegrityError:
        return None, {"transaction_id": ["value_already_exist"]}
    return row, None


def event_response(row: dict[str, Any]) -> dict[str, Any]:
    """V1::EventSerializer: the subscription and customer ids are never filled in at creation."""
    seconds, millis = divmod(row["timestamp_ms"], 1000)
    timestamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
    return {
        "lago_id": row["lago_id"], "transaction_id": row["transaction_id"], "lago_customer_id": None,
        "code": row["code"], "timestamp": timestamp, "precise_total_amount_cents": row.get("precise_total_amount_cents"),
        "properties": row["properties"], "lago_subscription_id": None,
        "external_subscription_id": row["external_subscription_id"], "created_at": row["created_at"],
    }
