"""Publish usage events to JetStream, pipelined, ``Nats-Msg-Id = transaction_id``,
every PubAck awaited within a deadline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from tokenmeter.core import UsageEvent

from . import commands
from .client import Client
from .exceptions import describe
from .settings import NatsSettings
from .subjects import subject_for

# stored/duplicate: the stream holds it; failed: try again; rejected: NATS can never take it (too large).
Status = Literal["stored", "duplicate", "failed", "rejected"]
# nats-server's default max_control_line: a longer PUB line makes it drop the connection, and with it
# every other event in flight.
MAX_CONTROL_LINE = 4096
_CONTROL_OVERHEAD = len("HPUB   18446744073709551615 18446744073709551615\r\n")


@dataclass(slots=True)
class PublishOutcome:
    """What JetStream said about one event."""

    transaction_id: str
    status: Status
    error: str | None = None
    sequence: int | None = None

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"transaction_id": self.transaction_id, "status": self.status}
        if self.error:
            result["error"] = self.error
        return result


async def publish_events(
    nc: Client, events: Iterable[UsageEvent], settings: NatsSettings, *, timeout: float, lost: asyncio.Event | None = None
) -> list[PublishOutcome]:
    """Publish all events and wait for their acknowledgements, at most ``timeout`` seconds.

    ``nc`` is the connected client (ManagedConnection.client; the stream must exist: ManagedConnection.jetstream()).
    An event is "stored" or "duplicate" only on a PubAck from the stream; anything else (no ack in
    time, a lost connection, a stream error) is "failed" with why, except an event NATS can never take
    (past the server's max_payload or control line), which is "rejected" and never sent. ``lost``, set when the connection
    drops, ends the wait early: no ack can come. ``events`` may be a generator: producing the next
    event then overlaps the server storing the previous ones. Outcomes come in event order.

    JetStream publishing is a core publish with a reply subject; the PubAck is the reply. Rather
    than nats-py's publish_async (a future, an inbox entry and a JSON model per message, measured
    at about a third of the SQS path's CPU), every event's reply comes to one subscription and is
    read in place; and each message goes out as a command written here (tokenmeter.nats.commands),
    the fixed part of its headers written once.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    acks = _Acks()
    inbox = nc.new_inbox()
    sub = await nc.subscribe_replies(f"{inbox}.*", acks.receive)
    taken: list[UsageEvent] = []
    try:
        remaining = iter(events)
        sending = asyncio.ensure_future(_send_all(nc, remaining, taken, acks, inbox, settings))
        waits = [sending] if lost is None else [sending, asyncio.ensure_future(lost.wait())]
        await asyncio.wait(waits, timeout=max(deadline - loop.time(), 0), return_when=asyncio.FIRST_COMPLETED)
        if sending.done() and not sending.cancelled() and sending.exception() is None:
            waits[0] = asyncio.ensure_future(acks.all_in.wait())
            await asyncio.wait(waits, timeout=max(deadline - loop.time(), 0), return_when=asyncio.FIRST_COMPLETED)
        for waiter in waits:
            waiter.cancel()
        if not sending.done():
            sending.cancel()
        for event in remaining:  # never sent: the deadline came first
            taken.append(event)
        acks.connection_lost = lost is not None and lost.is_set()
    finally:
        with contextlib.suppress(Exception):  # a dead connection cannot unsubscribe; nothing to keep
            await sub.unsubscribe()
    return [acks.outcome(i, event) for i, event in enumerate(taken)]


async def _send_all(nc: Client, events: Iterator[UsageEvent], taken: list[UsageEvent], acks: _Acks, inbox: str,
                    settings: NatsSettings) -> None:
    # Every message's header block is the same but for its id: that part is written once.
    headers = commands.header_prefix({"Nats-Expected-Stream": settings.stream}) + commands.header_key("Nats-Msg-Id")
    written: list[bytes] = []
    indices: list[int] = []
    subjects: dict[tuple[str, str], str] = {}  # a call's events name few subscriptions: each subject made once
    for event in events:
        index = len(taken)
        taken.append(event)
        if acks.in_flight + len(indices) >= MAX_IN_FLIGHT:  # bounded, as nats-py bounds publish_async
            await _send(nc, written, indices, acks)
            if acks.in_flight >= MAX_IN_FLIGHT:
                await acks.wait_for_room()
        key, reply = (event.external_subscription_id, event.code), f"{inbox}.{index}"
        try:
            subject = subjects.get(key) or subjects.setdefault(
                key, commands.check_subject(subject_for(settings.subject_prefix, *key)))
            header = headers + commands.header_value(event.transaction_id) + b"\r\n\r\n"
            payload = event.to_json()
            problem = too_large(subject, reply, len(header) + len(payload), nc.max_payload)
            if problem is not None:
                acks.rejected[index] = problem
                continue
            written.append(commands.hpub(subject, reply, header, payload))
        except Exception as exc:  # nats-py would refuse the message: not sent
            acks.errors[index] = describe(exc)
            continue
        indices.append(index)
        if len(indices) >= SEND_EVERY:
            await _send(nc, written, indices, acks)
    await _send(nc, written, indices, acks)
    acks.sending_done()


# Messages handed to the connection in one send: one call, one buffer append and one flush check for them all,
# where each message had a call of its own.
SEND_EVERY = 64


async def _send(nc: Client, written: list[bytes], indices: list[int], acks: _Acks) -> None:
    """Send the messages written so far (``indices``: their events), and empty both lists."""
    if not indices:
        return
    try:
        await nc.send(b"".join(written), len(indices))
    except Exception as exc:  # the connection is gone: none of them was sent
        why = describe(exc)
        for index in indices:
            acks.errors[index] = why
    else:
        for index in indices:
            acks.sent(index)
    written.clear()
    indices.clear()


MAX_IN_FLIGHT = 4000


def too_large(subject: str, reply: str, size: int, max_payload: int) -> str | None:
    """Why NATS cannot take a message of ``size`` bytes, headers included, (checked before it is sent), or None."""
    if len(subject.encode()) + len(reply) + _CONTROL_OVERHEAD > MAX_CONTROL_LINE:
        return f"subject too long for NATS: {len(subject.encode()):,} bytes (its control line is {MAX_CONTROL_LINE})"
    if max_payload and size > max_payload:
        return f"too large for NATS: {size:,} bytes, the server takes {max_payload:,}"
    return None


class _Acks:
    """The replies to one call's publishes, by index."""

    def __init__(self) -> None:
        self.acks: dict[int, tuple[str, int | None]] = {}  # index -> (status or error, sequence)
        self.errors: dict[int, str] = {}
        self.rejected: dict[int, str] = {}
        self.handed_over: set[int] = set()
        self.in_flight = 0
        self.connection_lost = False
        self.all_in = asyncio.Event()
        self._done_sending = False
        self._room = asyncio.Event()

    def sent(self, index: int) -> None:
        self.handed_over.add(index)
        self.in_flight += 1

    def sending_done(self) -> None:
        self._done_sending = True
        if self.in_flight == 0:
            self.all_in.set()

    async def wait_for_room(self) -> None:
        self._room.clear()
        await self._room.wait()

    def receive(self, subject: bytes, data: bytes, headers: dict[str, str] | None) -> None:
        index = int(subject.rpartition(b".")[2])
        if index in self.acks:
            return
        self.acks[index] = _read_ack(data, headers)
        self.in_flight -= 1
        if self.in_flight < MAX_IN_FLIGHT // 2:
            self._room.set()
        if self._done_sending and self.in_flight == 0:
            self.all_in.set()

    def outcome(self, index: int, event: UsageEvent) -> PublishOutcome:
        if index in self.rejected:
            return PublishOutcome(event.transaction_id, "rejected", self.rejected[index])
        if index in self.errors:
            return PublishOutcome(event.transaction_id, "failed", self.errors[index])
        if index not in self.acks:
            if index not in self.handed_over:
                why = "not sent: the connection was lost" if self.connection_lost else "not sent before the deadline"
            else:
                why = ("connection lost before the acknowledgement" if self.connection_lost
                       else "no acknowledgement before the deadline")
            return PublishOutcome(event.transaction_id, "failed", why)
        status, sequence = self.acks[index]
        if status in ("stored", "duplicate"):
            return PublishOutcome(event.transaction_id, status, sequence=sequence)
        return PublishOutcome(event.transaction_id, "failed", status)


def _read_ack(data: bytes, headers: dict[str, str] | None) -> tuple[str, int | None]:
    """("stored" | "duplicate", sequence) from a PubAck, or (why it failed, None)."""
    if headers and headers.get("Status"):  # 503: no stream listens on the subject
        return f"JetStream {headers['Status']}: {headers.get('Description') or 'no responders'}", None
    try:
        ack = orjson.loads(data)
    except orjson.JSONDecodeError:
        return "unreadable acknowledgement", None
    if isinstance(ack, dict) and isinstance(ack.get("error"), dict):
        error = ack["error"]
        return f"JetStream error {error.get('err_code', error.get('code'))}: {error.get('description', '')}", None
    if not isinstance(ack, dict) or "seq" not in ack:
        return "unreadable acknowledgement", None
    return ("duplicate" if ack.get("duplicate") else "stored"), ack["seq"]
