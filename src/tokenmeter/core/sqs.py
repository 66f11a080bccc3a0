"""Sending to SQS in batches, failing loudly when SQS does not take everything."""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .exceptions import TokenmeterError
from .threads import shared_pool

# SQS takes at most 10 messages and 256 KiB per SendMessageBatch; staying
# under both leaves room for the attributes SQS counts against the size.
MAX_BATCH_MESSAGES = 10
MAX_BATCH_BYTES = 250_000
_ATTEMPTS = 4
# Batches a sender keeps in flight: each waits tens of milliseconds for SQS, billed as Lambda time, while the
# function could go on reading (botocore's client keeps 10 connections; two batchers fit).
IN_FLIGHT = 4


def shared_sender() -> ThreadPoolExecutor:
    """The threads that send batches, one set per Lambda environment (two batchers' worth: usage and dead letters)."""
    return shared_pool("sqs-send", 2 * IN_FLIGHT)


class DeliveryError(TokenmeterError):
    """Raised when SQS did not take every message: the invocation must fail and be retried."""


class QueueBatcher:
    """Buffers message bodies for one queue and sends them in SendMessageBatch calls.

    With a ``sender`` (shared_sender()), a full batch is sent in the background while more bodies are added, at
    most IN_FLIGHT at a time; ``flush`` sends the rest and waits for every batch. A batch SQS did not take raises
    at the next ``add`` or at ``flush``, once every batch in flight has its answer: the caller fails and is
    retried whole, under the same ids, as when the batches went one after another."""

    def __init__(self, sqs: Any, queue_url: str, sender: ThreadPoolExecutor | None = None):
        self._sqs = sqs
        self._queue_url = queue_url
        self._sender = sender
        self._bodies: list[str] = []
        self._bytes = 0
        self._in_flight: deque[Future[int]] = deque()
        self.sent = 0

    def add(self, body: str) -> None:
        size = len(body) if body.isascii() else len(body.encode())  # isascii reads a flag: no copy
        if self._bodies and (len(self._bodies) == MAX_BATCH_MESSAGES or self._bytes + size > MAX_BATCH_BYTES):
            self._dispatch()
        self._bodies.append(body)
        self._bytes += size

    def flush(self) -> None:
        """Send what is buffered and wait for every batch; raises DeliveryError (or the client's error) if SQS did
        not take everything."""
        entries = self._taken()
        try:
            if entries:  # the last batch goes from here, where the caller would only wait (most invocations send one)
                self._settle(IN_FLIGHT - 1)
                self.sent += _send(self._sqs, self._queue_url, entries)
        finally:
            self._settle(0)

    def _taken(self) -> list[dict[str, str]]:
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(self._bodies)]
        self._bodies, self._bytes = [], 0
        return entries

    def _dispatch(self) -> None:
        entries = self._taken()
        if self._sender is None:
            self.sent += _send(self._sqs, self._queue_url, entries)
            return
        self._settle(IN_FLIGHT - 1)  # (room for this batch; and an earlier batch's failure raised before it goes)
        self._in_flight.append(self._sender.submit(_send, self._sqs, self._queue_url, entries))

    def _settle(self, keep: int) -> None:
        """Take the answers of the batches sent, oldest first, until at most ``keep`` are in flight (the answers
        already there are taken too). On a failure, every batch in flight is waited for before it is raised:
        nothing is left sending once the caller has failed."""
        in_flight = self._in_flight
        while in_flight and (len(in_flight) > keep or in_flight[0].done()):
            try:
                self.sent += in_flight.popleft().result()
            except BaseException:
                while in_flight:
                    in_flight.popleft().exception()  # (waits; its own failure is the same story)
                raise


def _send(sqs: Any, queue_url: str, entries: list[dict[str, str]]) -> int:
    """One batch, its failed entries sent again; the number SQS took (all of them, or it raises)."""
    sent = 0
    for attempt in range(_ATTEMPTS):
        if not entries:
            return sent
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        sent += len(response.get("Successful", []))
        failed = {f["Id"]: f for f in response.get("Failed", [])}
        permanent = [f for f in failed.values() if f.get("SenderFault")]
        if permanent:
            raise DeliveryError(f"SQS refused {len(permanent)} message(s): {permanent[0].get('Message')}")
        entries = [e for e in entries if e["Id"] in failed]
        if entries:
            time.sleep(0.05 * 2**attempt)
    if entries:
        raise DeliveryError(f"SQS failed {len(entries)} message(s) after {_ATTEMPTS} attempts")
    return sent
