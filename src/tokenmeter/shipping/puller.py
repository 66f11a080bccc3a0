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

from tokenmeter.nats.client import server_status

_HEARTBEAT = "100"
_ENDS = {"404", "408"}  # no messages / request expired: the request is over, nothing is wrong
# A no_wait request is answered at once; this only bounds the wait on a connection that died meanwhile.
_PREFETCH_WAIT = 1.0


class PullError(Exception):
    """The server ended a pull request for a reason other than having nothing (e.g. consumer deleted)."""


class Puller:
    """Fetches from one durable pull consumer; ``await start()`` first, ``await stop()`` after.

    A fetch with ``prefetch`` that leaves messages waiting asks for the next batch before it returns: the
    server delivers it (and the client reads it) while the caller works on this one, instead of a round
    trip at the start of every fetch. ``stop`` hands back (naks) what came but was not fetched; it was
    delivered all the same, and JetStream counts the delivery, so callers prefetch only while they have
    time to take what comes.
    """

    def __init__(self, nc: Any, stream: str, consumer: str):
        self._nc = nc
        self._request_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._inbox = nc.new_inbox()
        self._sub: Any = None
        self._messages: list[Any] = []
        self._wanted = 0
        self._asked = False  # a no_wait request is out whose answer has not been collected
        self._done = asyncio.Event()
        self._ended_by: tuple[str, str] | None = None

    async def start(self) -> Puller:
        self._sub = await self._nc.subscribe_in_place(self._inbox, self._receive)
        return self

    async def stop(self) -> None:
        if self._sub is None:
            return
        # A prefetch on its way ends at once (no_wait): wait for its messages, to hand them back too.
        leftover = await self._collect(_PREFETCH_WAIT) if self._asked else []
        leftover += self._messages
        self._messages = []
        await self._sub.unsubscribe()
        self._sub = None
        for msg in leftover:  # for the next run now, rather than after the ack wait
            await msg.nak()

    async def fetch(self, batch: int, timeout: float, prefetch: bool = False) -> list[Any]:
        """Up to ``batch`` messages; waits up to ``timeout`` only when none are there at all. With
        ``prefetch``, the next batch is asked for before this one is returned (see the class).

        Raises nats.errors.TimeoutError when none came, as nats-py's fetch does.
        """
        # no_wait without expires: the server answers at once (with expires it would linger).
        if not self._asked:
            await self._ask({"batch": batch, "no_wait": True}, batch)
        messages = await self._collect(timeout)
        if not messages:
            # Nothing waiting: linger for one message, so a run returns as soon as there is work.
            await self._ask({"batch": 1, "expires": int(timeout * 1e9)}, 1)
            messages = await self._collect(timeout + 1.0)
        if not messages:
            raise nats.errors.TimeoutError
        if prefetch and messages[-1].metadata.num_pending > 0:
            await self._ask({"batch": batch, "no_wait": True}, batch)
        return messages

    async def _ask(self, request: dict[str, Any], batch: int) -> None:
        # Messages of an earlier request that came after its wait are kept, never dropped.
        self._wanted, self._ended_by = len(self._messages) + batch, None
        self._done.clear()
        await self._nc.publish(self._request_subject, orjson.dumps(request), reply=self._inbox)
        self._asked = True

    async def _collect(self, wait: float) -> list[Any]:
        with contextlib.suppress(TimeoutError):  # what came is returned; the caller decides
            await asyncio.wait_for(self._done.wait(), wait)
        self._asked = False
        if self._ended_by and self._ended_by[0] not in _ENDS and not self._messages:
            raise PullError(f"pull request ended with {self._ended_by[0]} {self._ended_by[1]}")
        messages, self._messages = self._messages, []
        return messages

    def _receive(self, msg: Any) -> None:
        status = server_status(msg.headers)  # (a stored message's headers stay unread)
        if status is None:
            self._messages.append(msg)
            if len(self._messages) >= self._wanted:
                self._done.set()
        elif status != _HEARTBEAT:
            self._ended_by = (status, msg.headers.get("Description", ""))
            self._done.set()
