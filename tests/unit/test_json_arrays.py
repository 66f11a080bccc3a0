"""A JSON array past the bounds of a whole read, read element by element by s3_records: the same records, under
the same names, as the array read whole; and what cannot be read, one letter naming where it stopped."""

import gzip
import io
import json

import pytest
from conftest import OneObject
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenmeter.core.dead_letters import DeadLetter
from tokenmeter.metering import json_arrays
from tokenmeter.metering.records import DeadLetterBudget, ReadLimits

ROWS = [{"id": f"obs-{i}", "type": "GENERATION", "usage_details": {"input": 100 + i, "output": 7}, "note": "é, [x]" * 3}
        for i in range(40)]
SMALL = ReadLimits(max_record_bytes=600, max_document_bytes=1200)


def read(body: bytes, limits: ReadLimits = SMALL, budget: DeadLetterBudget | None = None) -> list:
    from tokenmeter.metering.s3_objects import s3_records

    return list(s3_records(OneObject(body), "exports", "langfuse/p1/observations_v2/run.json", limits, budget))


def named(items: list) -> list[tuple]:
    return [(item.source, item.identity, item.value) for item in items]


@pytest.mark.parametrize("body", [
    json.dumps(ROWS, separators=(",", ":"), ensure_ascii=False).encode(),  # one line, as Langfuse writes it
    json.dumps(ROWS, indent=2).encode(),  # pretty-printed
    b"\n  " + json.dumps(ROWS).encode() + b"\n",  # spaces before and after
    gzip.compress(json.dumps(ROWS).encode()),
])
def test_an_array_past_the_limits_reads_as_the_same_array_read_whole(body):
    streamed = read(body)
    assert [item.value for item in streamed] == ROWS
    assert named(streamed) == named(read(body, ReadLimits()))  # the same sources and ids as a whole read


def test_values_after_the_first_array_are_read_on_under_the_names_a_line_by_line_read_gives():
    # JSON Lines of arrays and of records that happen to begin with an array: past the document limit, streamed;
    # over 1 MiB, so the text read is dropped from the front as it goes, line numbers kept.
    rows = [{**row, "note": "y" * 300} for row in ROWS * 100]
    lines = [json.dumps(rows[i:i + 2]) if i % 3 == 0 else json.dumps(rows[i]) for i in range(len(rows))]
    body = ("\n".join(lines) + "\n").encode()
    assert len(body) > 1 << 20
    streamed = read(body, ReadLimits(max_record_bytes=4096, max_document_bytes=65536))
    whole = read(body, ReadLimits())
    assert named(streamed) == named(whole)
    assert streamed[-1].source.endswith(f"#line={len(lines)}[0]")  # (line 4,000 is an array of the last row)


def test_an_array_on_one_line_is_named_by_its_line_and_index():
    [first, *_, last] = read(json.dumps(ROWS).encode())
    assert first.source == "s3://exports/langfuse/p1/observations_v2/run.json#line=1[0]"
    assert last.identity.endswith("#1[39]")


def test_text_that_stops_being_json_is_one_letter_after_the_elements_before_it():
    body = json.dumps(ROWS).encode()
    cut = body.index(b'{"id": "obs-5"') - 2  # the ", " between elements 4 and 5
    *records, letter = read(body[:cut] + b"; " + body[cut + 2:])
    assert [r.value for r in records] == ROWS[:5]
    assert isinstance(letter, DeadLetter) and letter.reason == "decode_error"
    assert letter.detail == "after element 4 of the array: ';' where , or ] must come; the rest was not read"


@pytest.mark.parametrize("first_line", ['[INFO] {"id": "x"}', '[2026-11-29 06:00:00] {"id": "x"}', "[{]"])
def test_an_object_that_only_begins_with_a_bracket_is_read_line_by_line(first_line):
    # Log lines with their level or time in brackets: each line is read as any prefixed log line is.
    lines = [first_line] + [json.dumps(row) for row in ROWS]
    body = "\n".join(lines).encode()
    assert [item.value for item in read(body)[1:]] == ROWS


def test_an_array_cut_short_is_one_letter_naming_the_element_it_ends_in():
    body = json.dumps(ROWS).encode()
    cut = body[:body.index(b'"obs-30"')]
    *records, letter = read(cut)
    assert [r.value for r in records] == ROWS[:30]
    assert letter.reason == "decode_error" and letter.detail.startswith("element 30 of the array: not JSON")


def test_an_element_past_the_record_limit_is_a_letter_of_its_own():
    rows = [*ROWS[:3], {"id": "huge", "text": "x" * 2000}, *ROWS[3:]]
    items = read(json.dumps(rows).encode())
    assert [item.value for item in items if not isinstance(item, DeadLetter)] == ROWS
    [letter] = [item for item in items if isinstance(item, DeadLetter)]
    assert letter.reason == "record_too_large" and letter.source.endswith("#line=1[3]")
    # {"id": "huge", "text": " is 24 characters, then 2,000 x's and "}.
    assert letter.detail == "element 3 of the array: 2,026 characters, past max_record_bytes (600)"


def test_an_element_that_does_not_end_within_the_record_limit_ends_the_reading(monkeypatch):
    monkeypatch.setattr(json_arrays, "_CHUNK", 256)  # read in chunks smaller than the element
    rows = [*ROWS[:3], {"id": "huge", "text": "x" * 2000}, *ROWS[3:]]
    *records, letter = read(json.dumps(rows).encode())
    assert [r.value for r in records] == ROWS[:3]
    assert letter.reason == "record_too_large"
    assert letter.detail == "element 3 of the array: larger than max_record_bytes (600)"


def test_an_array_past_the_object_limit_is_one_letter_after_what_was_read():
    body = json.dumps(ROWS).encode()
    limits = ReadLimits(max_record_bytes=600, max_document_bytes=1200, max_object_bytes=len(body) // 2)
    *records, letter = read(body, limits)
    assert 0 < len(records) < len(ROWS) and [r.value for r in records] == ROWS[:len(records)]
    assert letter.reason == "object_too_large" and f"{len(body) // 2:,} bytes" in letter.detail


def test_past_its_share_of_dead_letters_the_rest_of_the_array_is_one_letter():
    from tokenmeter.metering.s3_objects import s3_records

    budget, items = DeadLetterBudget(2), []
    for item in s3_records(OneObject(json.dumps(ROWS).encode()), "exports", "run.json", SMALL, budget):
        items.append(item)
        if not isinstance(item, DeadLetter):
            budget.note(item.origin)  # as metering notes each element it dead-letters
    assert len(items) == 3 and items[-1].reason == "too_many_dead_letters"
    assert "elements from 2 on were not read" in items[-1].detail


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda children: st.lists(children, max_size=3)
                           | st.dictionaries(st.text(max_size=5), children, max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(json_values, min_size=1, max_size=6), st.integers(1, 9), st.sampled_from([None, 1]))
def test_any_array_read_in_any_chunks_is_its_elements(values, chunk, indent):
    # Chunks of a few bytes: numbers, words, strings and multi-byte characters cut at every place.
    body = json.dumps(values, indent=indent, ensure_ascii=False).encode()
    original, json_arrays._CHUNK = json_arrays._CHUNK, chunk
    try:
        found = list(json_arrays.array_elements(b"", io.BytesIO(body), "s3://b/k", "k", None, ReadLimits(),
                                                DeadLetterBudget(0)))
    finally:
        json_arrays._CHUNK = original
    assert [item.value for item in found] == json.loads(body)
