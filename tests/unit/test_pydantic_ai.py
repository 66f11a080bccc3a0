"""Pydantic AI's usage as an app logs it: a ModelResponse from `result.all_messages()` dumped with
ModelMessagesTypeAdapter, or a run's `usage()` written out with the model beside it. Field meanings from
`pydantic_ai/usage.py` and its model classes; the expected splits are worked out by hand."""

import pytest
from conftest import meter_lines

from tokenmeter.metering.formats import read_inference
from tokenmeter.metering.records import RecordError


def usage(**counts) -> dict:
    base = {"input_tokens": 0, "cache_write_tokens": 0, "cache_read_tokens": 0, "output_tokens": 0,
            "input_audio_tokens": 0, "cache_audio_read_tokens": 0, "output_audio_tokens": 0, "details": {}}
    return {**base, **counts}


RESPONSE = {"parts": [{"content": "Hello", "id": None, "part_kind": "text"}],
            "usage": usage(input_tokens=160, cache_write_tokens=100, cache_read_tokens=50, output_tokens=20,
                           details={"input_tokens": 10, "cache_creation_input_tokens": 100,
                                    "cache_read_input_tokens": 50, "output_tokens": 20}),
            "model_name": "claude-sonnet-4-5-20250929", "timestamp": "2025-08-21T10:00:00.123456Z", "kind": "response",
            "provider_name": "anthropic", "provider_details": {"finish_reason": "end_turn"},
            "provider_response_id": "msg_01XFDUDYJgAACzvnptvVoYEL", "finish_reason": "stop"}


def test_a_model_response_splits_its_input_into_uncached_reads_and_writes():
    inference = read_inference(RESPONSE)
    # 160 in all: 50 read, 100 written, 10 uncached.
    assert (inference.model, inference.request_id, inference.timestamp_ms, inference.counts) == (
        "claude-sonnet-4-5-20250929", "msg_01XFDUDYJgAACzvnptvVoYEL", 1755770400123,
        {"input": 10, "cached_input": 50, "cache_write": 100, "output": 20, "reasoning": 0})


@pytest.mark.parametrize("detail", ["reasoning_tokens", "thoughts_tokens", "thinking_tokens"])
def test_reasoning_named_in_the_details_is_taken_out_of_the_output(detail):
    run = {"model": "openai:o4-mini", "usage": usage(input_tokens=1200, cache_read_tokens=1024, output_tokens=300,
                                                     details={detail: 100, "accepted_prediction_tokens": 0},
                                                     requests=2, tool_calls=1)}
    assert read_inference(run).counts == {"input": 176, "cached_input": 1024, "output": 200, "reasoning": 100}


def test_audio_less_its_cached_part_is_its_own_type():
    run = {"model": "gpt-4o-audio-preview", "usage": usage(input_tokens=500, cache_read_tokens=120, input_audio_tokens=300,
                                                           cache_audio_read_tokens=100, output_tokens=80,
                                                           output_audio_tokens=60)}
    # Audio 300, 100 of it cached: 200 uncached audio; 500 - 120 cached - 200 audio = 180 text input.
    assert read_inference(run).counts == {"input": 180, "cached_input": 120, "input_audio": 200, "output": 20,
                                          "reasoning": 0, "output_audio": 60}
    with pytest.raises(RecordError, match="cache_audio_read_tokens"):
        read_inference({**run, "usage": usage(input_tokens=5, input_audio_tokens=1, cache_audio_read_tokens=2)})


def test_a_response_logged_twice_bills_once():
    summary, sink = meter_lines([RESPONSE, RESPONSE], {"default_subscription": "sub_1"})
    assert summary.metered == 2 and not sink.dead_letters
    assert len({e.transaction_id for e in sink.events}) == 4  # four types, the same ids both times
    assert {e.timestamp for e in sink.events} == {"1755770400.123"}


REQUEST = {"parts": [{"content": "You are helpful", "timestamp": "2025-08-21T09:59:59Z", "part_kind": "system-prompt"},
                     {"content": "Hi", "timestamp": "2025-08-21T09:59:59Z", "part_kind": "user-prompt"}],
           "instructions": None, "kind": "request", "run_id": "0198cd2f"}


def test_a_runs_messages_logged_as_one_array_bill_each_response_once():
    # `result.all_messages_json()` on one line: a request (bills nothing) and its response, each a record.
    summary, sink = meter_lines([[REQUEST, RESPONSE]], {"default_subscription": "sub_1"})
    assert (summary.records, summary.metered, dict(summary.skipped), sink.dead_letters) == (2, 1, {"no_usage": 1}, [])
    _, again = meter_lines([RESPONSE], {"default_subscription": "sub_1"})
    # Identified by its response id, not its place in the line: the same ids however it was logged.
    assert {e.transaction_id for e in sink.events} == {e.transaction_id for e in again.events}


def test_an_array_with_anything_but_objects_or_no_known_record_stays_one_record_and_one_dead_letter():
    search_results = [{"title": f"result {i}", "url": f"https://example.com/{i}"} for i in range(500)]
    for line in ([RESPONSE, "text"], search_results):
        summary, sink = meter_lines([line], {"default_subscription": "sub_1"})
        assert summary.records == 1 and [d.reason for d in sink.dead_letters] == ["unknown_format"]
        assert "got list" in sink.dead_letters[0].detail


def test_a_run_logged_with_an_id_beside_its_model_is_split_the_same():
    # Shaped like an OpenAI Responses usage (model, id, usage.input_tokens): the one-step reading must leave it to
    # Pydantic AI's, which knows cache_read_tokens is inside input_tokens.
    run = {"model": "gpt-4o", "id": "run-0198cd2f-7a4b-7c3d", "usage": usage(input_tokens=1200, cache_read_tokens=1024,
                                                                             output_tokens=300)}
    _, sink = meter_lines([run], {"default_subscription": "sub_1"})
    assert sorted((e.properties["token_type"], e.properties["tokens"]) for e in sink.events) == [
        ("cached_input", 1024), ("input", 176), ("output", 300)]
