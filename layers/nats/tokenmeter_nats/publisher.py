"""Publish usage events to JetStream, pipelined, ``Nats-Msg-Id = transaction_id``,
every PubAck awaited within a deadline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from tokenmeter_core import UsageEvent

from .exceptions import describe
from .settings import NatsSettings
from .subjects import subject_for

Status = Literal["stored", "duplicate", "failed"]


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
    js: Any, events: Iterable[UsageEvent], settings: NatsSettings, *, timeout: float, lost: asyncio.Event | None = None
) -> list[PublishOutcome]:
    """Publish all events and wait for their acknowledgements, at most ``timeout`` seconds.

    An event is "stored" or "duplicate" only on a PubAck from the stream; anything
    else (no ack in time, a lost connection, a stream error) is "failed" with why.
    ``lost``, set when the connection drops, ends the wait early: no ack can come.
    ``events`` may be a generator: producing the next event then overlaps the
    server storing the previous ones. Outcomes come in the order of the events.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    remaining = iter(events)
    taken: list[UsageEvent] = []
    futures: list[asyncio.Future | None] = []
    errors: dict[int, str] = {}

    async def send_all() -> None:
        for event in remaining:
            index = len(taken)
            taken.append(event)
            futures.append(None)
            try:
                # No wait_stall: it would wrap every publish in its own wait_for task;
                # the deadline bounds the whole loop instead.
                futures[index] = await js.publish_async(
                    subject_for(settings.subject_prefix, event.external_subscription_id, event.code),
                    event.to_json(),
                    stream=settings.stream,
                    headers={"Nats-Msg-Id": event.transaction_id},
                )
            except Exception as exc:  # the connection is gone: this event was not sent
                errors[index] = describe(exc)

    # Events never handed to the client by the deadline stay None: "not sent before the deadline".
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(send_all(), timeout=max(deadline - loop.time(), 0.001))
    for event in remaining:  # never sent: the deadline came first
        taken.append(event)
        futures.append(None)
    pending = [f for f in futures if f is not None]
    if pending:
        acks = asyncio.gather(*pending, return_exceptions=True)
        waits = [acks] if lost is None else [acks, asyncio.ensure_future(lost.wait())]
        await asyncio.wait(waits, timeout=max(deadline - loop.time(), 0), return_when=asyncio.FIRST_COMPLETED)
        for waiter in waits:
            waiter.cancel()  # cancelling the gather cancels the futures still without an ack:
        # that releases nats-py's in-flight slots; a message may still be stored, and dedup absorbs the retry.
    return [_outcome(event, future, errors.get(i)) for i, (event, future) in enumerate(zip(taken, futures))]


def _outcome(event: UsageEvent, future: asyncio.Future | None, error: str | None) -> PublishOutcome:
    if future is None:
        return PublishOutcome(event.transaction_id, "failed", error or "not sent before the deadline")
    if future.cancelled():
        return PublishOutcome(event.transaction_id, "failed", "no acknowledgement before the deadline")
    exc = future.exception()
    if exc is not None:
        return PublishOutcome(event.transaction_id, "failed", describe(exc))
    ack = future.result()
    return PublishOutcome(event.transaction_id, "duplicate" if ack.duplicate else "stored", sequence=ack.seq)
