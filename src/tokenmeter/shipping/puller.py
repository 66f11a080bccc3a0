"""Pulling batches from the durable consumer, leaner than nats-py's fetch.

nats-py's ``fetch`` waits for each message of a batch with its own ``wait_for`` (a task and several
loop turns per message); at thousands of events a second that was a third of lago_sync's CPU.
Here one subscription collects the batch through a callback and the caller waits once. The
protocol is JetStream's own: a pull request to ``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>``,
answered with up to ``batch`` messages and, when fewer are there, a status message (404/408).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import nats.errors
import orjson

_STATUS = "Status"
_HEARTBEAT = "100"
_ENDS = {"404", "408"}  # no messages / request expired: the request is over, nothing is wrong


class PullError(Exception):
    """The server ended a pull request for a reason other than having nothing (e.g. consumer deleted)."""


class Puller:
    """Fetches from one durable pull consumer; ``await start()`` first, ``await stop()`` after."""

    def __init__(self, nc: Any, stream: str, consumer: str):
        self._nc = nc
        self._request_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._inbox = nc.new_inbox()
        self._sub: Any = None
        self._messages: list[Any] = []
        self._wanted = 0
        self._done = asyncio.Event()
        self._ended_by: tuple[str, str] | None = None

    async def start(self) -> Puller:
        self._sub = await self._nc.subscribe(self._inbox, cb=self._receive)
        return self

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def fetch(self, batch: int, timeout: float) -> list[Any]:
        """Up to ``batch`` messages; waits up to ``timeout`` only when none are there at all.

        Raises nats.errors.TimeoutError when none came, as nats-py's fetch does.
        """
        # no_wait without expires: the server answers at once (with expires it would linger).
        messages = await self._request({"batch": batch, "no_wait": True}, batch, timeout)
        if not messages:
            # Nothing waiting: linger for one message, so a run returns as soon as there is work.
            messages = await self._request({"batch": 1, "expires": int(timeout * 1e9)}, 1, timeout + 1.0)
        if not messages:
            raise nats.errors.TimeoutError
        return messages

    async def _request(self, request: dict[str, Any], batch: int, wait: float) -> list[Any]:
        # Messages of an earlier request that came after its wait are kept, never dropped.
        self._wanted, self._ended_by = len(self._messages) + batch, None
        self._done.clear()
        await self._nc.publish(self._request_subject, orjson.dumps(request), reply=self._inbox)
        with contextlib.suppress(TimeoutError):  # what came is returned; the caller decides
            await asyncio.wait_for(self._done.wait(), wait)
        if self._ended_by and self._ended_by[0] not in _ENDS and not self._messages:
            raise PullError(f"pull request ended with {self._ended_by[0]} {self._ended_by[1]}")
        messages, self._messages = self._messages, []
        return messages

    async def _receive(self, msg: Any) -> None:
        status = msg.headers.get(_STATUS) if msg.headers else None
        if status is None:
            self._messages.append(msg)
            if len(self._messages) >= self._wanted:
                self._done.set()
        elif status != _HEARTBEAT:
            self._ended_by = (status, msg.headers.get("Description", ""))
            self._done.set()
