"""Anthropic message starts kept between invocations, so that a stream split across two log deliveries
still bills its output: its message_delta names no message and no model, only the start does.

One small S3 object per log stream (or object) under ``tokenmeter-streams/``, in the log bucket: the start
whose end was not in the last invocation; or a kept start a delta of the last invocation ended, with that
delta's identity (so a retried delivery pairs again, another delta not); or nothing. It is written, or
removed, only after the invocation's events reached SQS.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson

from tokenmeter.core import ascii_json

from .records import RawRecord, Unavailable
from .streams import OpenStart

PREFIX = "tokenmeter-streams/"


class S3StreamMemory:
    """Open message starts by log stream: read when a delta has no start, written after delivery."""

    def __init__(self, s3: Callable[[], Any], bucket: str):
        self._client, self._bucket = s3, bucket  # a factory: most invocations never need S3 for this
        self._pending: dict[str, OpenStart | None] = {}
        self._paired: dict[str, str] = {}

    def take(self, group: str, delta: str) -> OpenStart | None:
        """The start kept for ``group`` that the delta record ``delta`` ends, or None: a start already ended by
        another delta does not pair again (a lost start's delta is not billed as the previous message's)."""
        s3 = self._client()
        try:
            body = s3.get_object(Bucket=self._bucket, Key=self._key(group))["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        except Exception as exc:  # denied, throttled, unreachable: the delta waits for a retry, not a dead letter
            raise Unavailable(f"stream memory {self._key(group)} unreadable: {type(exc).__name__}: {exc}") from None
        kept = orjson.loads(body)
        if kept.get("paired_by") not in (None, delta):
            return None
        raw = RawRecord(kept["source"], kept["identity"], "", kept["fallback_ms"], kept["data"])
        return OpenStart(raw, kept["data"], kept["message_id"], kept["model"], kept["usage"], billed_input=True)

    def keep(self, group: str, start: OpenStart | None, paired_by: str | None = None) -> None:
        """What ``group`` holds after this invocation: its open start; the start a kept one's delta ended here
        (``paired_by``: so that a retried delivery pairs the same again); or nothing."""
        self._pending[group] = start
        if paired_by is not None:
            self._paired[group] = paired_by

    def save(self) -> None:
        """Called once the invocation's events are delivered."""
        s3 = self._client() if self._pending else None
        for group, start in self._pending.items():
            if start is None:
                s3.delete_object(Bucket=self._bucket, Key=self._key(group))
                continue
            body = {"source": start.raw.source, "identity": start.raw.identity, "fallback_ms": start.raw.fallback_ms,
                    "data": start.data, "message_id": start.message_id, "model": start.model, "usage": start.usage,
                    "paired_by": self._paired.get(group)}
            s3.put_object(Bucket=self._bucket, Key=self._key(group), Body=ascii_json(body),
                                ContentType="application/json")
        self._pending, self._paired = {}, {}

    @staticmethod
    def _key(group: str) -> str:
        return f"{PREFIX}{hashlib.sha256(group.encode()).hexdigest()[:40]}.json"
