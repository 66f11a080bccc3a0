"""Sending to SQS in batches, failing loudly when SQS does not take everything."""

from __future__ import annotations

import time
from typing import Any

from .exceptions import TokenmeterError

# SQS takes at most 10 messages and 256 KiB per SendMessageBatch; staying
# under both leaves room for the attributes SQS counts against the size.
MAX_BATCH_MESSAGES = 10
MAX_BATCH_BYTES = 250_000
_ATTEMPTS = 4


class DeliveryError(TokenmeterError):
    """Raised when SQS did not take every message: the invocation must fail and be retried."""


class QueueBatcher:
    """Buffers message bodies for one queue and sends them in SendMessageBatch calls."""

    def __init__(self, sqs: Any, queue_url: str):
        self._sqs = sqs
        self._queue_url = queue_url
        self._bodies: list[str] = []
        self._bytes = 0
        self.sent = 0

    def add(self, body: str) -> None:
        size = len(body) if body.isascii() else len(body.encode())  # isascii reads a flag: no copy
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
