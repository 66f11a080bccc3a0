"""tokenmeter's protocol parser does what nats-py's does (the second implementation) with any stream of operations
the server may send, cut into reads anywhere: the same messages, with the same arguments, and the same other calls
and errors, in the same order."""

import asyncio
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from nats.protocol.parser import AWAITING_CONTROL_LINE
from nats.protocol.parser import Parser as NatsParser

from tokenmeter.nats.parser import Parser


class _Client:
    """What a parser calls on its client, written down."""

    def __init__(self):
        self.calls = []

    async def _process_msg(self, sid, subject, reply, payload, headers):
        self.calls.append(("msg", sid, bytes(subject), bytes(reply), payload, headers))

    async def _process_ping(self):
        self.calls.append(("ping",))

    async def _process_pong(self):
        self.calls.append(("pong",))

    async def _process_info(self, info, initial_connection=False):
        self.calls.append(("info", info))

    async def _process_err(self, message):
        self.calls.append(("err", message))


def _run(parser_class, reads):
    client = _Client()
    parser = parser_class(client)

    async def feed():
        for data in reads:
            await parser.parse(data)

    try:
        asyncio.run(feed())
    except Exception as exc:  # noqa: BLE001 - the error is part of what is compared
        client.calls.append(("raised", type(exc).__name__))
    return client.calls, bytes(parser.buf), parser.state


def _message(subject, sid, reply, headers, payload, spacing=b" "):
    if headers is None:
        words = [b"MSG", subject, str(sid).encode(), *([reply] if reply else []), str(len(payload)).encode()]
        return spacing.join(words) + b"\r\n" + payload + b"\r\n"
    words = [b"HMSG", subject, str(sid).encode(), *([reply] if reply else []), str(len(headers)).encode(),
             str(len(headers) + len(payload)).encode()]
    return spacing.join(words) + b"\r\n" + headers + payload + b"\r\n"


# A subject or reply token: any bytes but the whitespace that ends one (ids with '/', dots, UTF-8 outside ASCII).
_token = st.from_regex(rb"[A-Za-z0-9_$.>*-]{1,20}", fullmatch=True) | st.binary(min_size=1, max_size=20).filter(
    lambda token: token.translate(None, b" \t\r\n\x0b\x0c") == token)
_headers = st.sampled_from([None, b"", b"NATS/1.0\r\nNats-Msg-Id: t-1\r\n\r\n", b"NATS/1.0 404 No Messages\r\n\r\n",
                            b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 3\r\n\r\n"])
_messages = st.builds(_message, _token, st.integers(0, 10**6), st.none() | _token, _headers,
                      st.binary(max_size=60), st.sampled_from([b" ", b" ", b" ", b"  ", b"\t"]))
_others = st.sampled_from([b"PING\r\n", b"PONG\r\n", b"+OK\r\n", b"-ERR 'Stale Connection'\r\n",
                           b"INFO " + json.dumps({"server_id": "x", "max_payload": 1048576}).encode() + b"\r\n",
                           b"MSG a b 3\r\nabc\r\n", b"MSG a 1 x\r\n", b"HMSGX a 1 2 3\r\n", b"MSG a 1 2 3 4\r\n"])


@settings(max_examples=500, deadline=None)
@given(st.lists(_messages | _others, max_size=12), st.lists(st.integers(1, 200), max_size=20))
def test_any_stream_cut_anywhere_is_read_as_nats_py_reads_it(operations, cuts):
    stream = b"".join(operations)
    reads, at = [], 0
    for size in cuts:
        reads.append(stream[at:at + size])
        at += size
    reads.append(stream[at:])
    assert _run(Parser, reads) == _run(NatsParser, reads)


def test_a_fetch_of_ledger_messages_and_its_end_read_as_nats_py_reads_them():
    headers = b"NATS/1.0\r\nNats-Expected-Stream: USAGE\r\nNats-Msg-Id: 9c1f-input\r\n\r\n"
    stream = b"".join(_message(b"usage.sub_1.llm_tokens", 7, f"$JS.ACK.USAGE.lago-sync.1.{i}.{i}.1732646400000000000.{3 - i}"
                               .encode(), headers, b'{"tokens": %d}' % i) for i in range(1, 4))
    stream += _message(b"_INBOX.x", 7, None, b"NATS/1.0 404 No Messages\r\n\r\n", b"")
    ours = _run(Parser, [stream[:150], stream[150:]])
    assert ours == _run(NatsParser, [stream[:150], stream[150:]])
    assert [call[1:4] for call in ours[0]] == [
        (7, b"usage.sub_1.llm_tokens", b"$JS.ACK.USAGE.lago-sync.1.1.1.1732646400000000000.2"),
        (7, b"usage.sub_1.llm_tokens", b"$JS.ACK.USAGE.lago-sync.1.2.2.1732646400000000000.1"),
        (7, b"usage.sub_1.llm_tokens", b"$JS.ACK.USAGE.lago-sync.1.3.3.1732646400000000000.0"),
        (7, b"_INBOX.x", b"")]
    assert ours[0][0][4:] == (b'{"tokens": 1}', headers) and ours[0][3][4:] == (b"", b"NATS/1.0 404 No Messages\r\n\r\n")


def test_two_messages_cut_at_every_byte_read_as_nats_py_reads_them():
    stream = (_message(b"usage.a.llm_tokens", 3, b"$JS.ACK.x.1", b"NATS/1.0\r\nNats-Msg-Id: t-1\r\n\r\n", b'{"a":1}')
              + b"PING\r\n" + _message(b"_INBOX.y.1", 4, None, None, b'{"stream":"USAGE","seq":1}'))
    for at in range(len(stream) + 1):
        reads = [stream[:at], stream[at:]]
        assert _run(Parser, reads) == _run(NatsParser, reads), at


def test_the_client_reads_with_this_parser():
    # nats-py's client makes its parser in __init__ and keeps it across reconnects (reset): ours must be that one.
    from tokenmeter.nats.client import Client

    client = Client()
    assert type(client._ps) is Parser and client._ps.nc is client
    client._ps.reset()
    assert client._ps.state == AWAITING_CONTROL_LINE and client._ps.buf == bytearray()
