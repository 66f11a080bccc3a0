import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenmeter.core import (
    InvalidEventError,
    UsageEvent,
    ascii_json,
    format_timestamp,
    parse_rfc3339_ms,
    transaction_id,
)


@pytest.mark.parametrize(
    ("epoch_ms", "expected"),
    [(1_732_646_400_123, "1732646400.123"), (1_732_646_400_005, "1732646400.005"), (0, "0.000"), (999, "0.999")],
)
def test_timestamp_is_unix_seconds_with_milliseconds(epoch_ms, expected):
    assert format_timestamp(epoch_ms) == expected


@pytest.mark.parametrize(
    ("text", "epoch_ms"),
    [
        # 2024-11-26T18:40:00Z is 1732646400 (20053 days * 86400 + 18h40m).
        ("2024-11-26T18:40:00Z", 1_732_646_400_000),
        ("2024-11-26T18:40:00.123Z", 1_732_646_400_123),
        # Ollama writes nanoseconds; the milliseconds are kept, the rest dropped.
        ("2024-11-26T18:40:00.123456789Z", 1_732_646_400_123),
        ("2024-11-26T19:40:00.5+01:00", 1_732_646_400_500),
        ("2024-11-26T18:40:00", 1_732_646_400_000),
    ],
)
def test_rfc3339_parsing(text, epoch_ms):
    assert parse_rfc3339_ms(text) == epoch_ms


@pytest.mark.parametrize("text", ["yesterday", "1732646400", "2024-13-01T00:00:00Z", ""])
def test_rfc3339_rejects_non_times(text):
    with pytest.raises(ValueError):
        parse_rfc3339_ms(text)


def test_event_round_trips_through_its_contract():
    data = {
        "transaction_id": "abc-input",
        "external_subscription_id": "sub_42",
        "code": "llm_tokens",
        "timestamp": "1732646400.123",
        "properties": {"tokens": 812, "model": "llama3.1:8b", "token_type": "input"},
    }
    assert UsageEvent.from_dict(data).as_dict() == data


def test_event_validation_names_every_bad_field():
    with pytest.raises(InvalidEventError) as error:
        UsageEvent.from_dict({"transaction_id": "", "code": 3, "timestamp": "2024-11-26T18:40:00Z", "properties": []})
    assert set(error.value.errors) == {"transaction_id", "external_subscription_id", "code", "timestamp", "properties"}
    with pytest.raises(InvalidEventError) as error:
        UsageEvent.from_dict(["not", "an", "object"])
    assert error.value.errors == {"event": "must be a JSON object"}


def test_transaction_ids_are_deterministic_and_distinct():
    first = transaction_id("cwl:36912345678901234567890123456789012345678901234567890", "input")
    assert first == transaction_id("cwl:36912345678901234567890123456789012345678901234567890", "input")
    assert first != transaction_id("cwl:36912345678901234567890123456789012345678901234567890", "output")
    assert first != transaction_id("cwl:36912345678901234567890123456789012345678901234567891", "input")
    assert first.endswith("-input") and len(first) == 32 + len("-input")
    ids = {transaction_id(f"s3:bucket/key@etag#{line}", t) for line in range(2000) for t in ("input", "output")}
    assert len(ids) == 4000


def test_a_timestamp_of_thousands_of_digits_is_a_bad_field_not_a_crash():
    """It passed the format check, then int() refused it with a ValueError at every door's contract check."""
    event = {"transaction_id": "t1", "external_subscription_id": "sub_1", "code": "llm_tokens",
             "properties": {"tokens": 5, "model": "gpt-4o", "token_type": "input"}}
    with pytest.raises(InvalidEventError) as error:
        UsageEvent.from_dict({**event, "timestamp": "9" * 5000})
    assert set(error.value.errors) == {"timestamp"}
    assert UsageEvent.from_dict({**event, "timestamp": "1732646400.123456"}).timestamp == "1732646400.123456"


def test_an_event_named_outside_ascii_is_written_in_ascii_by_hand():
    event = UsageEvent("t-1", "Müller 😀", "llm_tokens", "1732646400.123", {"model": "модель"})
    # ü is U+00FC; 😀 is U+1F600, the UTF-16 pair D83D DE00; м о д е л ь are U+043C 043E 0434 0435 043B 044C.
    assert event.to_json() == (
        b'{"transaction_id":"t-1","external_subscription_id":"M\\u00fcller \\ud83d\\ude00","code":"llm_tokens",'
        b'"timestamp":"1732646400.123","properties":{"model":"\\u043c\\u043e\\u0434\\u0435\\u043b\\u044c"}}')


# Any text but DEL, which orjson leaves as it is (valid JSON either way) and the standard library escapes.
_any_text = st.text(st.characters(blacklist_characters="\x7f"), max_size=12)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_any_text, st.one_of(_any_text, st.integers(), st.lists(_any_text, max_size=3)), max_size=5))
def test_any_value_is_written_as_the_standard_librarys_ascii_json(value):
    # The second implementation: json.dumps with ensure_ascii, which also takes the lone surrogates orjson refuses.
    written = ascii_json(value)
    assert written.isascii()
    assert written == json.dumps(value, ensure_ascii=True, separators=(",", ":")).encode()
