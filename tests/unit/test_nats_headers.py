"""tokenmeter's NATS client reads message headers exactly as nats-py's own parser does (the second
implementation), on real header blocks and on any bytes hypothesis makes."""

from hypothesis import given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NatsClient

from tokenmeter.nats.headers import Client, parse_header_lines

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


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=12), st.sampled_from([b":", b": ", b":\t", b"", b" : "]),
                          st.binary(max_size=12)), max_size=6),
       st.sampled_from([b"\r\n", b"\n", b"\r\n\r\n"]))
def test_any_header_block_reads_the_same(lines, end):
    raw = b"\r\n".join(name + sep + value for name, sep, value in lines) + end
    assert parse_header_lines(raw) == theirs(raw)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=40))
def test_any_ascii_text_reads_the_same(text):
    raw = text.replace("|", "\r\n").encode()
    assert parse_header_lines(raw) == theirs(raw)
