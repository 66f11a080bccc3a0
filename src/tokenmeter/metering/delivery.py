"""Deliver usage events and dead letters to SQS, many events packed per message."""

from __future__ import annotations

from typing import Any

from tokenmeter.core.dead_letters import DeadLetter, fitted_json
from tokenmeter.core.sqs import MAX_BATCH_BYTES, QueueBatcher, shared_sender

from .usage import InferenceUsage

MAX_MESSAGE_BYTES = 25_000
_ENVELOPE = len('{"events":[]}')


class SqsOutbox:
    """The metering sink in Lambda: events to the usage queue, dead letters to theirs."""

    def __init__(self, sqs: Any, usage_queue_url: str, dead_letter_queue_url: str):
        # Batches go out while the records after them are read: a large object's thousands of sends, each waiting
        # on SQS, would otherwise be most of what the invocation is billed.
        self._usage = QueueBatcher(sqs, usage_queue_url, shared_sender())
        self._dead = QueueBatcher(sqs, dead_letter_queue_url, shared_sender())
        self._parts: list[str] = []
        self._size = _ENVELOPE

    def add_usage(self, usage: InferenceUsage) -> None:
        events = usage.json()  # ASCII: its length is its size in bytes
        if _ENVELOPE + len(events) + 1 > MAX_MESSAGE_BYTES:
            # Ids of 256 characters escaped to \uXXXX make one inference's events pass the cap: event by event.
            for event in usage.events():
                self._add(event.to_json().decode())
        else:
            self._add(events)

    def _add(self, part: str) -> None:
        if self._parts and self._size + len(part) + 1 > MAX_MESSAGE_BYTES:
            self._seal()
        self._parts.append(part)
        self._size += len(part) + 1

    def add_dead_letter(self, letter: DeadLetter) -> None:
        self._dead.add(fitted_json(letter, MAX_BATCH_BYTES).decode())

    def flush(self) -> None:
        """Send everything buffered; raises DeliveryError if SQS did not take it all."""
        if self._parts:
            self._seal()
        self._usage.flush()
        self._dead.flush()

    def _seal(self) -> None:
        self._usage.add('{"events":[' + ",".join(self._parts) + "]}")
        self._parts, self._size = [], _ENVELOPE
