"""tokenmeter's NATS client reads message headers exactly as nats-py's own parser does, and writes publishes
and acks byte for byte as nats-py's publish does (the second implementation), on real messages and on any
hypothesis makes."""

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nats import errors
from nats.aio.client import Client as NatsClient

from tokenmeter.nats import commands
from tokenmeter.nats.client import Client, StoredHeaders, parse_header_lines

theirs = NatsClient._parse_header_lines


def test_the_client_replaces_the_step_nats_py_has():
    # An upgrade of nats-py that renames the step would leave ours unused: fail here instead.
    assert "_parse_header_lines" in vars(NatsClient)
    assert Client()._parse_header_lines(b"Nats-Msg-Id: e-1\r\n\r\n") == {"Nats-Msg-Id": "e-1"}


def test_a_ledger_message_and_a_dead_letters_headers():
    raw = (b"Nats-Msg-Id: 3f1c-input\r\nTokenmeter-Reason: rejected_by_lago\r\n"
           b"Tokenmeter-Detail: code: value_already_exist; caf\xc3\xa9\r\nName:NoSpace\r\n\r\n")
    expected = {"Nats-Msg-Id": "3f1c-input", "Tokenmeter-Reason": "rejected_by_lago",
                "Tokenmeter-Detail": "code: value_already_exist; café", "Name": "NoSpace"}
    assert parse_header_lines(raw) == theirs(raw) == expected


def test_names_with_whitespace_or_non_ascii_are_dropped_as_nats_py_drops_them():
    raw = b"Bad Name: x\r\nTab\tName: y\r\nSep\x1cName: z\r\nN\xc3\xa4me: w\r\nno colon\r\n: empty name\r\nOk: 1\r\n"
    assert parse_header_lines(raw) == theirs(raw) == {"": "empty name", "Ok": "1"}


# A header block's lines: names and values of any bytes, around separators nats-py reads or refuses.
HEADER_LINES = st.builds(
    lambda lines, end: b"\r\n".join(name + sep + value for name, sep, value in lines) + end,
    st.lists(st.tuples(st.binary(max_size=12), st.sampled_from([b":", b": ", b":\t", b"", b" : "]),
                       st.binary(max_size=12)), max_size=6),
    st.sampled_from([b"\r\n", b"\n", b"\r\n\r\n"]))


@settings(max_examples=500, deadline=None)
@given(HEADER_LINES)
def test_any_header_block_reads_the_same(raw):
    assert parse_header_lines(raw) == theirs(raw)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=40))
def test_any_ascii_text_reads_the_same(text):
    raw = text.replace("|", "\r\n").encode()
    assert parse_header_lines(raw) == theirs(raw)


def _read_block(client: NatsClient, block: bytes):
    """What ``client`` makes of a message's whole header block: its headers, or the error it raises."""
    try:
        return asyncio.run(client._process_headers(block))
    except Exception as exc:  # noqa: BLE001 - the error itself is what is compared
        return type(exc)


def test_a_ledger_messages_block_and_a_pull_requests_end_read_as_nats_py_reads_them():
    ledger = b"NATS/1.0\r\nNats-Expected-Stream: USAGE\r\nNats-Msg-Id: 9c1f-input\r\n\r\n"  # as publish_event sends
    timeout = b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\n\r\n"
    assert _read_block(Client(), ledger) == _read_block(NatsClient(), ledger) == {
        "Nats-Expected-Stream": "USAGE", "Nats-Msg-Id": "9c1f-input"}
    assert _read_block(Client(), timeout) == _read_block(NatsClient(), timeout) == {
        "Status": "408", "Description": "Request Timeout", "Nats-Pending-Messages": "1"}


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([b"", b"\r\n", b" 404 No Messages\r\n", b" 100 Idle Heartbeat\r\n", b" 408\r\n", b" abc\r\n"]),
       st.lists(st.tuples(st.binary(max_size=12), st.sampled_from([b":", b": ", b""]), st.binary(max_size=12)),
                max_size=3),
       st.sampled_from([b"\r\n\r\n", b"\r\n", b"", b"\n\r\n"]))
def test_any_header_block_a_message_carries_reads_as_nats_py_reads_it(status, lines, end):
    # A block without a status takes the client's short way; one with a status, or none, nats-py's own.
    block = b"NATS/1.0" + status + b"\r\n".join(name + sep + value for name, sep, value in lines) + end
    assert _read_block(Client(), block) == _read_block(NatsClient(), block)


@settings(max_examples=500, deadline=None)
@given(HEADER_LINES)
def test_a_stored_messages_headers_read_when_asked_for_are_what_nats_py_reads(raw):
    expected = theirs(raw)
    headers = StoredHeaders(raw)
    assert headers == expected and expected == headers and dict(headers) == expected and {**headers} == expected
    assert list(headers.items()) == list(expected.items()) and len(headers) == len(expected)
    assert bool(headers) == bool(expected) and repr(headers) == repr(expected)
    for name in [*expected, "Absent-Name"]:
        assert headers.get(name) == expected.get(name) and (name in headers) == (name in expected)
        assert headers.get(name, "-") == expected.get(name, "-")
    with pytest.raises(KeyError):
        headers["Absent-Name"]


def test_an_in_place_handler_gets_a_stored_messages_headers_unread_and_a_status_as_nats_py_reads_it():
    client, got = Client(), []
    client._subs[7] = object()  # (a subscription the handler stands for)
    client._in_place[7] = (got.append, True)
    ledger = b"NATS/1.0\r\nNats-Expected-Stream: USAGE\r\nNats-Msg-Id: 9c1f-input\r\n\r\n"
    timeout = b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\n\r\n"
    for block in (ledger, timeout):
        asyncio.run(client._process_msg(7, b"_INBOX.a", b"$JS.ACK.USAGE.sync.1.5.5.1732646400000000000.0", b"{}", block))
    stored, status = got
    assert type(stored.headers) is StoredHeaders and stored.headers._read is None  # nothing read before it is asked
    assert stored.headers == _read_block(NatsClient(), ledger) == {"Nats-Expected-Stream": "USAGE",
                                                                    "Nats-Msg-Id": "9c1f-input"}
    assert type(status.headers) is dict and status.headers == _read_block(NatsClient(), timeout)


class _Wire(NatsClient):
    """nats-py's own client, its outgoing commands captured instead of sent (the second implementation)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []

    async def _send_command(self, cmd: bytes, priority: bool = False) -> None:
        self.sent.append(bytes(cmd))


def nats_py_writes(subject: str, reply: str, payload: bytes, headers: dict[str, str] | None) -> bytes:
    wire = _Wire()
    asyncio.run(wire._send_publish(subject, reply, payload, len(payload), headers))
    [command] = wire.sent
    return command


def test_the_client_still_has_the_steps_send_relies_on():
    for name in ("_send_command", "_send_publish", "_flush_pending", "_pending_data_size", "_max_pending_size"):
        assert hasattr(NatsClient(), name), name


def test_the_client_still_has_the_steps_subscribe_in_place_relies_on():
    # The parser hands every message to _process_msg; a renamed step would leave the handlers without messages.
    for name in ("_process_msg", "_process_headers", "_build_message", "_remove_sub"):
        assert name in vars(NatsClient), name
    for name in ("_subs", "_error_cb", "stats"):
        assert hasattr(NatsClient(), name), name


def test_a_usage_event_publish_is_written_as_nats_py_writes_it():
    payload = b'{"transaction_id":"e-1","external_subscription_id":"sub_42","code":"llm_tokens"}'
    header = commands.header_prefix({"Nats-Expected-Stream": "USAGE"}) + commands.header_key("Nats-Msg-Id")
    ours = commands.hpub("usage.sub_42.llm_tokens", "_INBOX.x.7", header + commands.header_value("e-1") + b"\r\n\r\n",
                         payload)
    # By hand from the NATS protocol: a header block of 10 + 29 + 18 + 2 = 59 bytes, then the 80-byte payload.
    block = b"NATS/1.0\r\nNats-Expected-Stream: USAGE\r\nNats-Msg-Id: e-1\r\n\r\n"
    assert ours == b"HPUB usage.sub_42.llm_tokens _INBOX.x.7 59 139\r\n" + block + payload + b"\r\n"
    assert ours == nats_py_writes("usage.sub_42.llm_tokens", "_INBOX.x.7", payload,
                                  {"Nats-Expected-Stream": "USAGE", "Nats-Msg-Id": "e-1"})


_header_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@settings(max_examples=400, deadline=None)
@given(st.from_regex(r"[A-Za-z0-9_.~-]{1,30}", fullmatch=True), st.from_regex(r"_INBOX\.[A-Za-z0-9]{1,8}\.[0-9]{1,4}", fullmatch=True),
       st.binary(max_size=60), _header_text, _header_text)
def test_any_publish_is_written_as_nats_py_writes_it(subject, reply, payload, stream, msg_id):
    # Values with spaces at the edges, CR/LF or any Unicode: trimmed and made one line as nats-py does.
    header = commands.header_prefix({"Nats-Expected-Stream": stream}) + commands.header_key("Nats-Msg-Id")
    ours = commands.hpub(subject, reply, header + commands.header_value(msg_id) + b"\r\n\r\n", payload)
    assert ours == nats_py_writes(subject, reply, payload, {"Nats-Expected-Stream": stream, "Nats-Msg-Id": msg_id})


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"\$JS\.ACK\.USAGE\.lago-sync\.[0-9]{1,3}\.[0-9]{1,6}\.[0-9]{1,6}\.[0-9]{19}\.[0-9]{1,5}", fullmatch=True))
def test_an_ack_is_written_as_msg_ack_writes_it(reply):
    assert commands.ack(reply) == nats_py_writes(reply, "", b"", None) == b"PUB " + reply.encode() + b"  0\r\n\r\n"


@pytest.mark.parametrize("key", ["Bad Key", "Nats-Msg-Id\r\nX", "Schlüssel", "a:b"])
def test_a_header_key_nats_py_refuses_is_refused(key):
    with pytest.raises(errors.BadHeaderError):
        nats_py_writes("s", "", b"", {key: "v", "Ok": "1"})
    with pytest.raises(errors.BadHeaderError):
        commands.header_key(key)


def test_an_empty_header_key_is_left_out_as_nats_py_leaves_it_out():
    assert commands.header_prefix({" ": "x", "Ok": "1"}) + b"\r\n" == b"NATS/1.0\r\nOk: 1\r\n\r\n"
    assert nats_py_writes("s", "", b"", {" ": "x", "Ok": "1"}) == b"HPUB s  19 19\r\nNATS/1.0\r\nOk: 1\r\n\r\n\r\n"


@pytest.mark.parametrize("subject", ["", "usage.a b.c", "usage.a\r\nPUB x 0"])
def test_a_subject_nats_py_refuses_is_refused(subject):
    with pytest.raises(errors.BadSubjectError):
        commands.check_subject(subject)
    with pytest.raises(errors.BadSubjectError):
        asyncio.run(_connected_as_nats_py().publish(subject, b"x"))


def _connected_as_nats_py() -> NatsClient:
    client = NatsClient()
    client._status = NatsClient.CONNECTED
    return client
