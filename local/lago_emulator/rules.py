"""Lago's rules for incoming events: validation, timestamps, dedup, batch limits."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from .store import Store, new_ids, now_iso

MAX_BATCH = 100
_DECIMAL = re.compile(r"-?\d+(\.\d+)?")
_MILLIS = re.compile(r"\d+(\.\d{3})?")


def validate_event(event: Any, received_ms: int, lago_id: str,
                   created_at: str) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
    """(row to store, errors) for one event body, as Lago validates it."""
    if not isinstance(event, dict):
        return None, {"event": ["invalid_format"]}
    errors: dict[str, list[str]] = {}
    for field in ("transaction_id", "external_subscription_id", "code"):
        value = event.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            errors[field] = ["value_is_mandatory"]
        elif not isinstance(value, str):
            errors[field] = ["invalid_type"]
    timestamp_ms = _timestamp_ms(event.get("timestamp"), received_ms)
    if timestamp_ms is None:
        errors["timestamp"] = ["invalid_format"]
    properties = event.get("properties") or {}
    if not isinstance(properties, dict):
        errors["properties"] = ["invalid_type"]
    if errors:
        return None, errors
    return {
        "lago_id": lago_id, "transaction_id": event["transaction_id"],
        "external_subscription_id": event["external_subscription_id"], "code": event["code"],
        "timestamp_ms": timestamp_ms, "properties": properties,
        "precise_total_amount_cents": event.get("precise_total_amount_cents"), "created_at": created_at,
    }, {}


def _timestamp_ms(value: Any, received_ms: int) -> int | None:
    """Unix seconds, integer or decimal string; missing means time of receipt; ISO strings are invalid."""
    if value is None:
        return received_ms
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(Decimal(str(value)) * 1000)
    if isinstance(value, str) and _MILLIS.fullmatch(value):  # the common "1732646400.123", without Decimal
        whole, _, fraction = value.partition(".")
        return int(whole) * 1000 + int(fraction or 0)
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        try:
            return int(Decimal(value.strip()) * 1000)
        except InvalidOperation:
            return None
    return None


def accept_events(store: Store, bodies: list[Any]) -> tuple[list[dict[str, Any]] | None, dict[str, Any]]:
    """Store a batch atomically; (stored rows, {}) or (None, errors by index as a string)."""
    received_ms, created_at = int(time.time() * 1000), now_iso()
    rows, errors = [], {}
    for index, (body, lago_id) in enumerate(zip(bodies, new_ids(len(bodies)))):
        row, problems = validate_event(body, received_ms, lago_id, created_at)
        if problems:
            errors[str(index)] = problems
        rows.append(row)
    valid = [(i, r) for i, r in enumerate(rows) if r is not None]
    with store.lock:
        if not errors and len({(r["external_subscription_id"], r["transaction_id"]) for r in rows}) == len(rows):
            # The usual batch: insert straight away; the unique index refuses it whole if any is stored.
            with contextlib.suppress(sqlite3.IntegrityError):
                store.insert_events(rows)
                return rows, {}
        stored = store.existing((r["external_subscription_id"], r["transaction_id"]) for _, r in valid)
        seen: set[tuple[str, str]] = set()
        for index, row in valid:
            key = (row["external_subscription_id"], row["transaction_id"])
            if key in stored or key in seen:
                errors.setdefault(str(index), {})["transaction_id"] = ["value_already_exist"]
            seen.add(key)
        if errors:
            return None, errors
        store.insert_events(rows)
    return rows, {}


def event_response(row: dict[str, Any], store: Store, subscriptions: dict[str, Any] | None = None) -> dict[str, Any]:
    """Lago's event body; ``subscriptions`` caches lookups across one batch."""
    subscriptions = {} if subscriptions is None else subscriptions
    key = row["external_subscription_id"]
    if key not in subscriptions:
        subscriptions[key] = store.get("subscription", key)
    subscription = subscriptions[key]
    seconds, millis = divmod(row["timestamp_ms"], 1000)
    timestamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
    return {
        "lago_id": row["lago_id"], "transaction_id": row["transaction_id"], "lago_customer_id": None,
        "code": row["code"], "timestamp": timestamp, "precise_total_amount_cents": row.get("precise_total_amount_cents"),
        "properties": row["properties"], "lago_subscription_id": subscription["lago_id"] if subscription else None,
        "external_subscription_id": row["external_subscription_id"], "created_at": row["created_at"],
    }
