"""SQLite persistence of the emulator: events and the billing objects, surviving a restart.

Events are kept as Lago's two event stores keep them. The Postgres store has a unique index on
(organization, external_subscription_id, transaction_id); the ClickHouse store keeps every row it
is sent (copies merge only at read time, see usage.py). Each row also records when it was accepted,
so that usage can lag behind acceptance as Lago's does.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

EVENT_STORES = ("postgres", "clickhouse")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    lago_id TEXT,
    transaction_id TEXT NOT NULL,
    external_subscription_id TEXT,
    code TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    properties TEXT NOT NULL,
    precise_total_amount_cents TEXT,
    created_at TEXT,
    accepted_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_transaction ON events (transaction_id);
CREATE INDEX IF NOT EXISTS events_by_subscription ON events (external_subscription_id, code, timestamp_ms);
CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# SQLite, like Postgres, treats NULLs as distinct in a unique index: events without a subscription never clash.
_POSTGRES_UNIQUE = ("CREATE UNIQUE INDEX IF NOT EXISTS events_unique_transaction"
                    " ON events (external_subscription_id, transaction_id)")
_COLUMNS = ("lago_id", "transaction_id", "external_subscription_id", "code", "timestamp_ms", "properties",
            "precise_total_amount_cents", "created_at", "accepted_ms")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    return str(uuid.uuid4())


def new_ids(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs, cheaper in bulk than uuid4() one by one."""
    ids, raw = [], os.urandom(16 * count).hex()
    for i in range(0, 32 * count, 32):
        h = raw[i : i + 32]
        ids.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}")
    return ids


class Store:
    """All state of one emulated Lago organisation; safe to share between request threads."""

    def __init__(self, path: str, event_store: str = "postgres"):
        if event_store not in EVENT_STORES:
            raise ValueError(f"event store must be one of {', '.join(EVENT_STORES)}, got {event_store!r}")
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # A test double: it must survive its process stopping (the OS keeps what was written), not the
        # machine crashing, so SQLite need not wait for the disk on each commit.
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('event_store', ?)", (event_store,))
        kept = self._db.execute("SELECT value FROM meta WHERE key = 'event_store'").fetchone()[0]
        if kept != event_store:
            raise ValueError(f"{path} holds a {kept} event store; start with --event-store {kept} or another --db")
        self.event_store = event_store
        if event_store == "postgres":
            self._db.execute(_POSTGRES_UNIQUE)
        self.lock = threading.RLock()
        # Billing objects are few and read on every event (each response names its subscription):
        # kept in memory as well, written through to SQLite.
        self._objects: dict[tuple[str, str], dict[str, Any] | None] = {}

    # --- billing objects (metrics, plans, customers, subscriptions) ---
    def put(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        with self.lock:
            self._db.execute("INSERT OR REPLACE INTO objects VALUES (?, ?, ?)", (kind, key, json.dumps(doc)))
            self._objects[(kind, key)] = doc

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The stored document, shared: read it, never change it (``put`` a new one)."""
        with self.lock:
            if (kind, key) not in self._objects:
                row = self._db.execute("SELECT doc FROM objects WHERE kind = ? AND key = ?", (kind, key)).fetchone()
                self._objects[(kind, key)] = json.loads(row[0]) if row else None
            return self._objects[(kind, key)]

    def all(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            rows = self._db.execute("SELECT doc FROM objects WHERE kind = ? ORDER BY key", (kind,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    # --- events ---
    def existing(self, pairs: Iterable[tuple[str | None, str]]) -> set[tuple[str | None, str]]:
        """Which (external_subscription_id, transaction_id) pairs are already stored."""
        wanted = {pair for pair in pairs if pair[0] is not None}
        if not wanted:
            return set()
        ids = sorted({transaction for _, transaction in wanted})
        with self.lock:
            rows = self._db.execute(
                "SELECT external_subscription_id, transaction_id FROM events WHERE transaction_id IN"
                f" ({', '.join('?' for _ in ids)})", ids).fetchall()
        return {(subscription, transaction) for subscription, transaction in rows} & wanted

    def insert_events(self, events: list[dict[str, Any]]) -> None:
        """Store events in one transaction: all or none (sqlite3.IntegrityError on a Postgres-store duplicate)."""
        with self.lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})",
                    [(e["lago_id"], e["transaction_id"], e["external_subscription_id"], e["code"], e["timestamp_ms"],
                      orjson.dumps(e["properties"]).decode(), e.get("precise_total_amount_cents"), e["created_at"],
                      e["accepted_ms"]) for e in events],
                )
                self._db.execute("COMMIT")
            except Exception:
                self._db.execute("ROLLBACK")
                raise

    def events(self, *, subscription: str | None = None, code: str | None = None, transaction_id: str | None = None,
               from_ms: int | None = None, to_ms: int | None = None, accepted_by_ms: int | None = None,
               order: str = "seq", limit: int = -1, offset: int = 0) -> list[dict[str, Any]]:
        """Stored rows matching every given filter; ``accepted_by_ms``: accepted at or before then."""
        where, args = _where(subscription=subscription, code=code, transaction_id=transaction_id, from_ms=from_ms,
                             to_ms=to_ms, accepted_by_ms=accepted_by_ms)
        with self.lock:
            rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM events {where} ORDER BY {order} LIMIT ? OFFSET ?",
                                    (*args, limit, offset)).fetchall()
        events = [dict(zip(_COLUMNS, row)) for row in rows]
        for event in events:
            event["properties"] = json.loads(event["properties"])
        return events

    def count_events(self, **filters: Any) -> int:
        where, args = _where(**filters)
        with self.lock:
            return self._db.execute(f"SELECT COUNT(*) FROM events {where}", args).fetchone()[0]

    def count_distinct_events(self) -> int:
        """Rows that differ in subscription, code, timestamp or transaction id (what ClickHouse dedup keeps)."""
        with self.lock:
            return self._db.execute("SELECT COUNT(*) FROM (SELECT DISTINCT external_subscription_id, code, timestamp_ms,"
                                    " transaction_id FROM events)").fetchone()[0]

    def delete_events(self, *, subscription: str | None = None, transaction_ids: list[str] | None = None,
                      count: int | None = None) -> int:
        """Delete stored events (fault injection: simulated loss); returns how many."""
        clauses, args = [], []
        if subscription is not None:
            clauses.append("external_subscription_id = ?")
            args.append(subscription)
        if transaction_ids is not None:
            clauses.append(f"transaction_id IN ({', '.join('?' for _ in transaction_ids)})")
            args.extend(transaction_ids)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        limit = f"ORDER BY seq LIMIT {int(count)}" if count is not None else ""
        with self.lock:
            cursor = self._db.execute(f"DELETE FROM events WHERE seq IN (SELECT seq FROM events {where} {limit})", args)
        return cursor.rowcount

    def close(self) -> None:
        with self.lock:
            self._db.close()


def _where(*, subscription: str | None = None, code: str | None = None, transaction_id: str | None = None,
           from_ms: int | None = None, to_ms: int | None = None, accepted_by_ms: int | None = None) -> tuple[str, list]:
    clauses, args = [], []
    for column, value in (("external_subscription_id", subscription), ("code", code), ("transaction_id", transaction_id)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    for clause, value in (("timestamp_ms >= ?", from_ms), ("timestamp_ms <= ?", to_ms), ("accepted_ms <= ?", accepted_by_ms)):
        if value is not None:
            clauses.append(clause)
            args.append(value)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), args
