"""Shipping: the durable consumer's events into Lago in batches, acked only once Lago holds them."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import nats.errors
import orjson
from aws_lambda_powertools import Logger

from tokenmeter.core import Contract, InvalidEventError, UsageEvent
from tokenmeter.nats import NatsSettings
from tokenmeter.nats.client import Client

from .dead_letters import copy_to, dead_letter
from .lago_api import Chunk, LagoApi, LagoAuthError, LagoSubscription, LagoUnavailable, ShipResult, chunks_of
from .puller import Puller
from .settings import SyncSettings
from .unbillable import unbillable_reason

logger = Logger(child=True)
# A refused key is a configuration error, not a retry: the messages wait this long before the next try.
_AUTH_RETRY_SECONDS = 30.0


@dataclass
class ShipSummary:
    shipped: int = 0
    already_billed: int = 0
    retried: int = 0
    held: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)
    unbillable: Counter[str] = field(default_factory=Counter)  # shipped, and Lago will never bill them
    drained: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"shipped": self.shipped, "already_billed": self.already_billed, "retried": self.retried,
                "held": self.held, "dead_lettered": dict(self.dead_lettered), "unbillable": dict(self.unbillable),
                "drained": self.drained}


class Shipper:
    """One run's shipping; ``deadline`` is a time.monotonic() by which the run must be done."""

    def __init__(self, js: Any, nc: Client, lago: LagoApi, nats_settings: NatsSettings, settings: SyncSettings,
                 deadline: float, contract: Contract | None = None):
        self.js, self.nc, self.lago, self.nats, self.settings, self.deadline = js, nc, lago, nats_settings, settings, deadline
        self.contract = contract
        self.summary = ShipSummary()
        self.unbillable: dict[int, tuple[str, str]] = {}  # id(msg) -> (reason, detail), until it is settled
        self.refused: LagoAuthError | None = None  # Lago refused the key: the run fails once it has handed back

    def time_left(self) -> float:
        return self.deadline - time.monotonic() - self.settings.deadline_margin_seconds

    async def run(self) -> ShipSummary:
        """Fetch, check and ship until drained or near the deadline.

        Shipping (a task on the same loop) overlaps fetching and checking the next batch, and the
        next batch starts shipping before the previous one is settled (acked).
        """
        puller = await Puller(self.nc, self.nats.stream, self.nats.consumer).start()
        lago_deadline = self.deadline - self.settings.deadline_margin_seconds  # no wait on Lago runs past this
        in_flight: deque[tuple[list[Chunk], asyncio.Future]] = deque()
        try:
            while self.time_left() > 0 and self.refused is None:
                try:
                    # The next batch is asked for ahead only while there is time to ship it: one left over at
                    # the end goes back, but counts as delivered, and retries back off by deliveries.
                    ahead = self.time_left() > self.settings.lago_timeout_seconds + 1.0
                    messages = await puller.fetch(self.settings.fetch_batch, timeout=min(1.0, max(self.time_left(), 0.1)),
                                                  prefetch=ahead)
                except nats.errors.TimeoutError:
                    self.summary.drained = True
                    break
                chunks = await self.prepare(messages)
                if chunks and self.time_left() <= 0:
                    # Too close to the deadline to ship: hand them back now rather than after ack_wait.
                    for chunk in chunks:
                        for msg, _ in chunk:
                            await msg.nak()
                    break
                if chunks:
                    batches = [[event for _, event in chunk] for chunk in chunks]
                    in_flight.append((chunks, asyncio.ensure_future(self.lago.ship_all(batches, lago_deadline))))
                while len(in_flight) > 1:
                    await self.settle_all(*in_flight.popleft())
                if messages[-1].metadata.num_pending == 0:
                    # Nothing more waiting: no need to sit out a fetch timeout to learn it.
                    self.summary.drained = True
                    break
        finally:
            while in_flight:
                await self.settle_all(*in_flight.popleft())
            await puller.stop()
        if self.refused is not None:
            raise self.refused
        return self.summary

    async def prepare(self, messages: list[Any]) -> list[Chunk]:
        """The fetched events Lago can bill, in batches of at most 100; the rest dead-lettered or held."""
        ready: Chunk = []
        now = time.time()  # one clock for the batch's timestamps
        for msg in messages:
            try:
                event = UsageEvent.from_dict(orjson.loads(msg.data))
            except (orjson.JSONDecodeError, InvalidEventError) as exc:
                await self.dead_letter(msg, "invalid_event", str(exc))
                continue
            broken = self.contract.errors(event, now) if self.contract is not None else None
            if broken:  # the last door before Lago: nothing that breaks the contract is billed
                await self.dead_letter(msg, "invalid_event", "; ".join(f"{k}: {why}" for k, why in broken.items()))
                continue
            ready.append((msg, event))
        known: Chunk = []
        await self.lago.look_up_subscriptions({event.external_subscription_id for _, event in ready})
        checked: set[tuple[str, str]] = set()  # a batch holds few subscriptions: look each up once
        for position, item in enumerate(ready):
            pair = (item[1].external_subscription_id, item[1].code)
            try:
                if pair in checked:  # looked up for this batch already: its answer, without a coroutine per event
                    self.note_unbillable(*item, self.lago.cached_subscription(pair[0]))
                    known.append(item)
                elif await self.known_to_lago(*item):
                    known.append(item)
                    checked.add(pair)
            except (LagoUnavailable, LagoAuthError) as exc:
                # Only the events not yet checked go back: the checked ones are held, dead-lettered or kept.
                logger.warning("Lago lookups failing; retrying later", extra={"error": str(exc)})
                if isinstance(exc, LagoAuthError):
                    self.refused = exc
                for msg, _ in ready[position:]:
                    await self.retry(msg, _AUTH_RETRY_SECONDS if self.refused else None)
                break
        return chunks_of(known)

    async def settle_all(self, chunks: list[Chunk], shipping: asyncio.Future) -> None:
        for chunk, result in zip(chunks, await shipping):
            if isinstance(result, LagoAuthError):
                self.refused = result
                for msg, _ in chunk:
                    await self.retry(msg, _AUTH_RETRY_SECONDS)
                continue
            await self.settle(chunk, result)

    async def settle(self, chunk: list[tuple[Any, UsageEvent]], result: ShipResult) -> None:
        """Ack what Lago holds (recording what it will never bill), dead-letter what it refused,
        nak what can succeed later."""
        acked = []
        for index in result.stored + result.already:
            msg = chunk[index][0]
            why = self.unbillable.pop(id(msg), None)
            if why is not None and not await self.record_unbillable(msg, *why):
                continue
            acked.append(msg)
        if acked:  # one write for the batch
            await self.nc.ack_all(acked)
        for index, why in result.rejected.items():
            self.unbillable.pop(id(chunk[index][0]), None)
            await self.dead_letter(chunk[index][0], "rejected_by_lago", why)
        for index in result.retry:
            self.unbillable.pop(id(chunk[index][0]), None)
            await self.retry(chunk[index][0], result.retry_after)
        if result.retry:
            logger.warning("Lago batch not taken; retrying later", extra={"reason": result.retry_reason})
        self.summary.shipped += len(result.stored)
        self.summary.already_billed += len(result.already)

    async def known_to_lago(self, msg: Any, event: UsageEvent) -> bool:
        """Lago silently accepts, and never bills, unknown subscriptions and metrics: hold those."""
        subscription_known = await self.lago.subscription(event.external_subscription_id) is not None
        if subscription_known and await self.lago.metric_exists(event.code):
            await self.check_billable(msg, event)
            return True
        reason = "unknown_metric" if subscription_known else "unknown_subscription"
        age = (datetime.now(UTC) - msg.metadata.timestamp).total_seconds()
        if age >= self.settings.unknown_hold_seconds:
            await self.dead_letter(msg, reason, f"{event.external_subscription_id} / {event.code} unknown to Lago "
                                                f"after {age:.0f} s")
        else:
            self.summary.held += 1
            await msg.nak(delay=self.settings.unknown_retry_delay_seconds)
        return False

    async def check_billable(self, msg: Any, event: UsageEvent) -> None:
        """Note an event Lago will store and never bill (its subscription, looked up and cached, says so)."""
        self.note_unbillable(msg, event, await self.lago.subscription(event.external_subscription_id))

    def note_unbillable(self, msg: Any, event: UsageEvent, subscription: LagoSubscription | None) -> None:
        why = unbillable_reason(subscription, event) if subscription is not None else None
        if why is not None:
            self.unbillable[id(msg)] = why

    async def record_unbillable(self, msg: Any, reason: str, detail: str) -> bool:
        """Keep an unbillable event in its stream (to report it), before it is acked; False: retried later."""
        try:
            await copy_to(self.js, self.settings.unbillable_stream, msg, reason, detail)
        except Exception as exc:  # not recorded: keep the original for another try (Lago holds it already)
            logger.error("unbillable event not recorded; retrying later", extra={"reason": reason, "error": str(exc)})
            await msg.nak(delay=self.settings.retry_max_seconds)
            return False
        self.summary.unbillable[reason] += 1
        return True

    async def retry(self, msg: Any, after: float | None) -> None:
        attempts = msg.metadata.num_delivered or 1
        delay = after if after is not None else min(2.0 ** (attempts - 1), self.settings.retry_max_seconds)
        self.summary.retried += 1
        await msg.nak(delay=min(delay, self.settings.retry_max_seconds))

    async def dead_letter(self, msg: Any, reason: str, detail: str) -> None:
        try:
            await dead_letter(self.js, self.settings.dead_letter_stream, msg, reason, detail)
        except Exception as exc:  # not stored in the dead-letter stream: keep the original for another try
            logger.error("dead letter not stored; retrying later", extra={"reason": reason, "error": str(exc)})
            await msg.nak(delay=self.settings.retry_max_seconds)
            return
        self.summary.dead_lettered[reason] += 1
