"""nats-py's client with four lean paths: reading headers, handing messages over where they are read, and sending
publishes and acks built in bulk.

nats-py 2.16 checks every header name for whitespace with a generator over its characters (a fifth of lago_sync's
CPU for ledger messages, which carry their ``Nats-Msg-Id``); ``Client`` reads them with a regular expression
instead, and a block without a status line (every stored message's) without nats-py's status checks; a stored
message handed over in place is read only when its headers are asked for (``StoredHeaders``). Its ``publish`` builds
each message's header block key by key and value by value (``str.translate`` on every value), and ``Msg.ack`` is a
whole ``publish`` per message: together about a third of publish_event's and a tenth of lago_sync's CPU. ``send``
takes protocol commands already built (tokenmeter.nats.commands) and hands them to the same outgoing buffer and
flusher ``publish`` uses. A subscription with a callback gets each message through a queue and a task of its own (a
queue put, a get and a loop turn per message: about a tenth of publish_event's CPU, for its PubAcks);
``subscribe_in_place`` hands a message to a plain function as the reading task reads it, and ``subscribe_replies``
its subject, payload and headers alone. tests/unit/test_nats_client.py checks each against nats-py's own code, byte
for byte, and that the client still has the steps these rely on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from nats import errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from . import commands
from .parser import Parser

_CRLF = b"\r\n"
_VERSION_LINE = b"NATS/1.0\r\n"
# \s matches what str.isspace() accepts, the test nats-py applies to each character.
_WHITESPACE = re.compile(r"\s")


def parse_header_lines(raw: bytes) -> dict[str, str]:
    """``Name: Value`` lines into a dict, as nats-py's ``Client._parse_header_lines`` does."""
    out: dict[str, str] = {}
    for line in raw.split(_CRLF):
        name, sep, value = line.partition(b":")
        if sep and name.isascii():
            key = name.strip().decode("ascii")
            if _WHITESPACE.search(key) is None:
                out[key] = value.strip().decode("utf-8", "replace")
    return out


def _without_status(headers: bytes | None) -> bool:
    # A stored message's block: the version line ends at once (no status: those are the server's own replies), then
    # its headers (Nats-Expected-Stream, Nats-Msg-Id). nats-py reads such a block as its lines alone, after status
    # checks and through a coroutine, which cost lago_sync 0.6 us a message more.
    return bool(headers) and headers.startswith(_VERSION_LINE)


def _stored_headers(headers: bytes) -> dict[str, str] | None:
    return parse_header_lines(headers[len(_VERSION_LINE):]) or None


def server_status(headers: Mapping[str, str] | None) -> str | None:
    """The status of a message the server wrote itself (a pull request's end, a heartbeat), as an in-place handler
    gets it; None for a stored message (its block has no status line: its headers, a ``StoredHeaders``, stay unread)
    and for one without headers."""
    return headers.get("Status") if type(headers) is dict else None


class StoredHeaders(Mapping[str, str]):
    """A stored message's headers as ``parse_header_lines`` reads them, read from its block when first asked for.

    lago_sync and the running totals read the ledger's messages by thousands and look at few of their headers (a
    dead letter's copy reads the Nats-Msg-Id): reading every block as it came cost 1.35 us a message, a tenth of
    lago_sync's CPU. Its block has no status line, so no status is ever among them."""

    __slots__ = ("_lines", "_read")

    def __init__(self, lines: bytes):
        self._lines = lines  # the block after its version line
        self._read: dict[str, str] | None = None

    def _headers(self) -> dict[str, str]:
        if self._read is None:
            self._read = parse_header_lines(self._lines)
        return self._read

    def __getitem__(self, name: str) -> str:
        return self._headers()[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self._headers().get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers())

    def __len__(self) -> int:
        return len(self._headers())

    def __repr__(self) -> str:
        return repr(self._headers())


class Client(NatsClient):
    _parse_header_lines = staticmethod(parse_header_lines)

    def __init__(self) -> None:
        super().__init__()
        self._ps = Parser(self)
        # subscription id -> its handler, and whether the handler takes a Msg (else subject, payload and headers)
        self._in_place: dict[int, tuple[Callable[..., None], bool]] = {}

    async def subscribe_in_place(self, subject: str, handler: Callable[[Msg], None]) -> Subscription:
        """Subscribe with ``handler`` called on each message as the connection's reading task reads it: it must not
        block (and should not raise: what it raises goes to the error callback, as a callback's does). A stored
        message's headers are a ``StoredHeaders``, read when first asked for; a status message's (the server's
        answer to a pull request, a heartbeat) a dict, as nats-py reads them."""
        sub = await self.subscribe(subject)
        self._in_place[sub._id] = (handler, True)
        return sub

    async def subscribe_replies(self, subject: str, handler: Callable[[bytes, bytes, dict[str, str] | None], None]
                                ) -> Subscription:
        """``subscribe_in_place`` for replies read by their subject, payload and headers alone (a publish's
        PubAcks): ``handler(subject, payload, headers)``, no Msg built (a twentieth of publish_event's CPU)."""
        sub = await self.subscribe(subject)
        self._in_place[sub._id] = (handler, False)
        return sub

    def _remove_sub(self, sid: int, max_msgs: int = 0) -> None:
        # Unsubscribing removes the subscription here: its handler goes with it, and with the handler the state it
        # holds (a publish call's acks), which a connection kept across invocations would otherwise keep for good.
        super()._remove_sub(sid, max_msgs)
        self._in_place.pop(sid, None)

    async def _process_headers(self, headers: bytes) -> dict[str, str] | None:
        return _stored_headers(headers) if _without_status(headers) else await super()._process_headers(headers)

    async def _process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes) -> None:
        entry = self._in_place.get(sid)
        if entry is None:
            await super()._process_msg(sid, subject, reply, data, headers)
            return
        if sid not in self._subs:  # unsubscribed: dropped, as nats-py drops it
            del self._in_place[sid]
            return
        self.stats["in_msgs"] += 1
        self.stats["in_bytes"] += len(data)
        handler, takes_msg = entry
        hdr: Mapping[str, str] | None
        if not headers:  # a reply (a PubAck): no coroutine to learn it has none
            hdr = None
        elif _without_status(headers):
            hdr = StoredHeaders(headers[len(_VERSION_LINE):]) if takes_msg else _stored_headers(headers)
        else:
            hdr = await self._process_headers(headers)
        try:
            if takes_msg:
                handler(self._build_message(sid, subject, reply, data, hdr))
            else:
                handler(subject, data, hdr)
        except Exception as exc:  # noqa: BLE001 - the reading task must go on
            await self._error_cb(exc)

    async def send(self, data: bytes, messages: int = 1) -> None:
        """Send ``messages`` publishes already written as protocol commands (``data``), as ``publish`` sends one.

        The same refusals as ``publish``: a closed or draining connection, and while reconnecting a
        buffer that cannot take them. A refused call sent none of them.
        """
        if self.is_closed:
            raise errors.ConnectionClosedError
        if self.is_draining_pubs:
            raise errors.ConnectionDrainingError
        if not self.is_connected and (
                self._max_pending_size <= 0 or len(data) + self._pending_data_size > self._max_pending_size):
            raise errors.OutboundBufferLimitError
        self.stats["out_msgs"] += messages
        self.stats["out_bytes"] += len(data)
        await self._send_command(data)
        if self._flush_queue is not None and self._flush_queue.empty():
            await self._flush_pending()

    async def ack_all(self, messages: Sequence[Msg]) -> None:
        """Acknowledge JetStream messages in one write, as ``Msg.ack`` would one by one (and its errors:
        not a JetStream message, already acknowledged; then none is acknowledged)."""
        for msg in messages:
            if not msg.reply:
                raise errors.NotJSMessageError
            if msg.is_acked:
                raise errors.MsgAlreadyAckdError(msg)
        await self.send(b"".join([commands.ack(msg.reply) for msg in messages]), len(messages))
        for msg in messages:
            msg._ackd = True
