"""Deliver usage events and dead letters to SQS, many events packed per message."""

from __future__ import annotations

import json
import time
from typing import Any

import orjson

from tokenmeter_core import TokenmeterError, UsageEvent

from .records import DeadLetter

# SQS takes at most 10 messages and 256 KiB per SendMessageBatch; staying
# under both leaves room for the attributes SQS counts against the size.
MAX_BATCH_MESSAGES = 10
MAX_BATCH_BYTES = 250_000
MAX_MESSAGE_BYTES = 25_000
_ATTEMPTS = 4
_ENVELOPE = len('{"events":[]}')


class DeliveryError(TokenmeterError):
    """Raised when SQS did not take every message: the invocation must fail and be retried."""


class _QueueBatcher:
    """Buffers message bodies for one queue and sends them in SendMessageBatch calls."""

    def __init__(self, sqs: Any, queue_url: str):
        self._sqs = sqs
        self._queue_url = queue_url
        self._bodies: list[str] = []
        self._bytes = 0
        self.sent = 0

    def add(self, body: str) -> None:
        size = len(body.encode())
        if self._bodies and (len(self._bodies) == MAX_BATCH_MESSAGES or self._bytes + size > MAX_BATCH_BYTES):
            self.flush()
        self._bodies.append(body)
        self._bytes += size

    def flush(self) -> None:
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(self._bodies)]
        self._bodies, self._bytes = [], 0
        for attempt in range(_ATTEMPTS):
            if not entries:
                return
            response = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            self.sent += len(response.get("Successful", []))
            failed = {f["Id"]: f for f in response.get("Failed", [])}
            permanent = [f for f in failed.values() if f.get("SenderFault")]
            if permanent:
                raise DeliveryError(f"SQS refused {len(permanent)} message(s): {permanent[0].get('Message')}")
            entries = [e for e in entries if e["Id"] in failed]
            if entries:
                time.sleep(0.05 * 2**attempt)
        if entries:
            raise DeliveryError(f"SQS failed {len(entries)} message(s) after {_ATTEMPTS} attempts")


class SqsOutbox:
    """The metering sink in Lambda: events to the usage queue, dead letters to theirs."""

    def __init__(self, sqs: Any, usage_queue_url: str, dead_letter_queue_url: str):
        self._usage = _QueueBatcher(sqs, usage_queue_url)
        self._dead = _QueueBatcher(sqs, dead_letter_queue_url)
        self._parts: list[bytes] = []
        self._size = _ENVELOPE

    def add_events(self, events: list[UsageEvent]) -> None:
        for event in events:
            part = _ascii_json(event.as_dict())
            if self._parts and self._size + len(part) + 1 > MAX_MESSAGE_BYTES:
                self._seal()
            self._parts.append(part)
            self._size += len(part) + 1

    def add_dead_letter(self, letter: DeadLetter) -> None:
        self._dead.add(_ascii_json(letter.as_dict()).decode())

    def flush(self) -> None:
        """Send everything buffered; raises DeliveryError if SQS did not take it all."""
        if self._parts:
            self._seal()
        self._usage.flush()
        self._dead.flush()

    def _seal(self) -> None:
        self._usage.add('{"events":[' + b",".join(self._parts).decode() + "]}")
        self._parts, self._size = [], _ENVELOPE


def _ascii_json(value: dict[str, Any]) -> bytes:
    """JSON that SQS accepts whatever the text: non-ASCII escaped (SQS refuses U+FFFE, lone surrogates)."""
    try:
        encoded = orjson.dumps(value)
        if encoded.isascii():
            return encoded
    except TypeError:  # lone surrogates, which orjson refuses to encode
        pass
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).encode()
