"""The totals' documents in a NATS KV bucket, each written only over the revision it was read at.

Keys: ``checkpoint``; ``sub.<s>`` and ``day.<s>.<YYYYMMDD>`` per subscription; ``due.<s>`` while a
subscription waits to be checked against Lago. ``<s>`` is the subscription's subject token with '~'
written as '=' (KV keys allow '=' but not '~'), so every id has its own key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import APIError, BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError

from tokenmeter.nats import decode_token, encode_token
from tokenmeter.nats.reader import StreamReader

from .totals import Checkpoint, DayTotals, SubscriptionTotals

CHECKPOINT = "checkpoint"
_IN_FLIGHT = 256  # KV reads or writes awaited at once
_WRONG_LAST_SEQUENCE = (10071, 10164)  # JetStream's error codes when an expected last sequence does not hold
D = TypeVar("D")


def subscription_key(subscription: str) -> str:
    return "sub." + key_token(subscription)


def day_doc_key(subscription: str, day: str) -> str:
    return f"day.{key_token(subscription)}.{day}"


def key_token(subscription: str) -> str:
    return encode_token(subscription).replace("~", "=")


def subscription_of(token: str) -> str:
    return decode_token(token.replace("=", "~"))


class TotalsStore:
    def __init__(self, js: Any, kv: Any, bucket: str):
        self.js, self.kv, self.bucket = js, kv, bucket

    @classmethod
    async def open(cls, js: Any, bucket: str, keep_days: float, create: bool = True) -> TotalsStore:
        """The bucket, created on first use (documents expire ``keep_days`` after their last change)."""
        try:
            return cls(js, await js.key_value(bucket), bucket)
        except BucketNotFoundError:
            if not create:
                raise
            return cls(js, await js.create_key_value(KeyValueConfig(
                bucket=bucket, history=1, ttl=keep_days * 86_400, storage=StorageType.FILE, direct=True)), bucket)

    async def read(self, key: str) -> tuple[bytes | None, int]:
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return None, 0
        return entry.value, entry.revision

    async def write(self, key: str, data: bytes, revision: int) -> int:
        """Store over ``revision`` (0: a new key); KeyWrongLastSequenceError if it moved since."""
        if revision:
            return await self.kv.update(key, data, last=revision)
        return await self.kv.create(key, data)

    async def change(self, key: str, load: Callable[[bytes | None], D], apply: Callable[[D], None],
                     known: tuple[D, int] | None = None) -> tuple[D, int]:
        """Read (or take ``known``), apply, write; read again and re-apply if another writer got there first.
        ``apply`` must skip what a document already holds (its ``through``), so re-applying is exact."""
        while True:
            if known is None:
                data, revision = await self.read(key)
                doc = load(data)
            else:
                doc, revision = known
            apply(doc)
            try:
                return doc, await self.write(key, doc.to_json(), revision)  # type: ignore[attr-defined]
            except KeyWrongLastSequenceError:
                known = None

    async def checkpoint(self) -> tuple[Checkpoint, int]:
        data, revision = await self.read(CHECKPOINT)
        return Checkpoint.from_json(data), revision

    async def subscription(self, subscription: str) -> tuple[SubscriptionTotals, int]:
        data, revision = await self.read(subscription_key(subscription))
        return SubscriptionTotals.from_json(subscription, data), revision

    async def days(self, subscription: str, days: list[str]) -> dict[str, DayTotals]:
        found = await gather_bounded([self.read(day_doc_key(subscription, d)) for d in days])
        return {d: DayTotals.from_json(data) for d, (data, _) in zip(days, found, strict=True)}

    # --- subscriptions waiting for a check ---
    async def mark_due(self, subscriptions: set[str]) -> None:
        await gather_bounded([self.kv.put("due." + key_token(s), b"1") for s in subscriptions])

    async def clear_due(self, subscription: str, revision: int) -> None:
        """Unmark, unless it was marked again since ``revision`` (new usage arrived during the check)."""
        try:
            await self.kv.delete("due." + key_token(subscription), last=revision)
        except APIError as exc:
            if exc.err_code not in _WRONG_LAST_SEQUENCE:
                raise

    async def due(self) -> list[tuple[str, int]]:
        """Subscriptions marked due with the revision of their mark, in key order."""
        return [(subscription_of(token), revision) for token, revision in sorted(await self._keys("due."))]

    async def mark_all_due(self) -> int:
        """Mark every subscription the totals know (a sweep: drift from Lago's side shows without new usage)."""
        subscriptions = {subscription_of(token) for token, _ in await self._keys("sub.")}
        await self.mark_due(subscriptions)
        return len(subscriptions)

    async def _keys(self, prefix: str) -> list[tuple[str, int]]:
        """(key less ``prefix``, revision) of the live keys under ``prefix``: each key's last message, read
        headers only (nats-py's key watcher may report "no keys" before the first one arrives)."""
        subjects = f"$KV.{self.bucket}.{prefix}"
        found = []
        async with StreamReader(self.js, f"KV_{self.bucket}", subjects + ">", last_per_subject=True) as reader:
            while batch := await reader.next_batch(1000):
                found.extend((m.subject[len(subjects):], m.seq) for m in batch
                             if m.headers.get("KV-Operation") not in ("DEL", "PURGE"))
        return found


async def gather_bounded(work: list[Awaitable[Any]]) -> list[Any]:
    """Await all, at most ``_IN_FLIGHT`` at a time, results in order."""
    results: list[Any] = []
    for start in range(0, len(work), _IN_FLIGHT):
        results.extend(await asyncio.gather(*work[start:start + _IN_FLIGHT]))
    return results
