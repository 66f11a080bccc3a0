"""SQLite persistence of the emulator: events and the billing objects, surviving a restart."""

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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    lago_id TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    external_subscription_id TEXT NOT NULL,
    code TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    properties TEXT NOT NULL,
    precise_total_amount_cents TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (external_subscription_id, transaction_id)
);
CREATE INDEX IF NOT EXISTS events_by_transaction ON events (transaction_id);
CREATE INDEX IF NOT EXISTS events_by_subscription ON events (external_subscription_id, code, timestamp_ms);
CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (kind, key));
"""


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

    def __init__(self, path: str):
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # A test double: it must survive its process stopping (the OS keeps what was written), not the
        # machine crashing, so SQLite need not wait for the disk on each commit.
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(_SCHEMA)
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
    def existing(self, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (external_subscription_id, transaction_id) pairs are already stored."""
        wanted = set(pairs)
        if not wanted:
            return set()
        ids = sorted({transaction for _, transaction in wanted})
        with self.lock:
            rows = self._db.execute(
                "SELECT external_subscription_id, transaction_id FROM events WHERE transaction_id IN"
                f" ({', '.join('?' for _ in ids)})", ids).fetchall()
        return {(subscription, transaction) for subscription, transaction in rows} & wanted

    def insert_events(self, events: list[dict[str, Any]]) -> None:
        """Store events in one transaction: all or none."""
        with self.lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO events (lago_id, transaction_id, external_subscription_id, code, timestamp_ms,"
                    " properties, precise_total_amount_cents, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(e["lago_id"], e["transaction_id"], e["external_subscription_id"], e["code"], e["timestamp_ms"],
                      orjson.dumps(e["properties"]).decode(), e.get("precise_total_amount_cents"), e["created_at"])
                     for e in events],
                )
                self._db.execute("COMMIT")
            except Exception:
                self._db.execute("ROLLBACK")
                raise

    def events(self, *, subscription: str | None = None, code: str | None = None, transaction_id: str | None = None,
               from_ms: int | None = None, to_ms: int | None = None, limit: int = -1, offset: int = 0) -> list[dict[str, Any]]:
        clauses, args = [], []
        for column, value in (("external_subscription_id", subscription), ("code", code), ("transaction_id", transaction_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if from_ms is not None:
            clauses.append("timestamp_ms >= ?")
            args.append(from_ms)
        if to_ms is not None:
            clauses.append("timestamp_ms <= ?")
            args.append(to_ms)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.lock:
            rows = self._db.execute(
                "SELECT lago_id, transaction_id, external_subscription_id, code, timestamp_ms, properties,"
                f" precise_total_amount_cents, created_at FROM events {where} ORDER BY seq LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
        keys = ("lago_id", "transaction_id", "external_subscription_id", "code", "timestamp_ms", "properties",
                "precise_total_amount_cents", "created_at")
        events = [dict(zip(keys, row)) for row in rows]
        for event in events:
            event["properties"] = json.loads(event["properties"])
        return events

    def count_events(self, subscription: str | None = None) -> int:
        with self.lock:
            if subscription is None:
                return self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            return self._db.execute(
                "SELECT COUNT(*) FROM events WHERE external_subscription_id = ?", (subscription,)).fetchone()[0]

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
