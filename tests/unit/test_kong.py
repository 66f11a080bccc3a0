"""Kong Gateway's log entries for requests its AI plugins served: the entry's shape from Kong's logging plugins
and its source (`serialize-analytics.lua` in 3.8 and later, the `ai-proxy` section with singular count names in
3.6 and 3.7); expected counts worked out by hand from what each field means."""

import copy
import json

import pytest
from conftest import meter_lines

from tokenmeter.metering.formats import NothingToBill, read_inference
from tokenmeter.metering.records import RecordError

ENTRY = {
    "workspace": "b4a1e9a2-6b4a-4e91-9c2e-3b6a9d8f1c72", "upstream_uri": "/v1/chat/completions", "upstream_status": 200,
    "client_ip": "192.168.65.1", "started_at": 1732646400123,
    "request": {"id": "9ec9264afbbbad5fe5c64877d92eeb04", "uri": "/openai", "method": "POST", "size": 323,
                "headers": {"content-type": "application/json"}, "querystring": {}},
    "response": {"status": 200, "size": 1243, "headers": {"content-type": "application/json"}},
    "latencies": {"kong": 12, "proxy": 1530, "request": 1542, "receive": 0},
    "route": {"id": "0d2e6c7a", "name": "openai-chat"}, "service": {"id": "5a1b", "name": "llm"},
    "consumer": {"id": "c0ffee", "username": "acme", "custom_id": "sub_acme"},
    "ai": {"proxy": {"usage": {"prompt_tokens": 28, "completion_tokens": 20, "total_tokens": 48, "cost": 0.0038,
                               "time_per_token": 76},
                     "meta": {"plugin_id": "546c3856-24b3-469a-bd6c-f6083babd2cd", "provider_name": "openai",
                              "request_model": "gpt-4o", "response_model": "gpt-4o-2024-08-06", "llm_latency": 1520}}},
}


def entry(**ai_changes) -> dict:
    record = copy.deepcopy(ENTRY)
    record["ai"]["proxy"].update(ai_changes)
    return record


def test_an_ai_proxy_call_bills_the_model_that_answered_at_the_request_start():
    inference = read_inference(ENTRY)
    assert (inference.model, inference.request_id, inference.timestamp_ms, inference.counts) == (
        "gpt-4o-2024-08-06", "9ec9264afbbbad5fe5c64877d92eeb04", 1732646400123, {"input": 28, "output": 20})


def test_kong_3_7_names_the_section_after_the_plugin_and_the_counts_in_the_singular():
    record = {**ENTRY, "ai": {"payload": {"request": "{}"},
                              "ai-proxy": {"usage": {"prompt_token": 89, "completion_token": 56, "total_tokens": 145},
                                           "meta": {"request_model": "gpt-35-turbo", "provider_name": "azure",
                                                    "response_model": "gpt-35-turbo", "plugin_id": "5df1"}}}}
    assert read_inference(record).counts == {"input": 89, "output": 56}


def test_the_logged_response_splits_the_prompt_when_its_counts_are_kongs():
    response = {"id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion", "model": "gpt-4o-2024-08-06",
                "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
                          "prompt_tokens_details": {"cached_tokens": 1024},
                          "completion_tokens_details": {"reasoning_tokens": 0}}}
    record = entry(usage={"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500},
                   payload={"response": json.dumps(response)})
    # 1200 - 1024 = 176 uncached input.
    assert read_inference(record).counts == {"input": 176, "cached_input": 1024, "output": 300, "reasoning": 0}
    # A logged response whose counts are not Kong's (a stream's text, another call's) is not used.
    other = entry(usage={"prompt_tokens": 1300, "completion_tokens": 300}, payload={"response": json.dumps(response)})
    assert read_inference(other).counts == {"input": 1300, "output": 300}
    stream = entry(payload={"response": "data: {\"choices\": []}\n\ndata: [DONE]\n\n"})
    assert read_inference(stream).counts == {"input": 28, "output": 20}


def test_the_request_model_stands_in_where_no_response_named_one():
    meta = {"request_model": "claude-3-5-haiku-20241022", "response_model": "UNSPECIFIED", "provider_name": "anthropic"}
    assert read_inference(entry(meta=meta)).model == "claude-3-5-haiku-20241022"
    with pytest.raises(RecordError, match="names no model") as error:
        read_inference(entry(meta={"request_model": "UNSPECIFIED", "provider_name": "openai"}))
    assert error.value.reason == "invalid_record"


def test_a_cache_hit_called_no_model():
    record = entry(cache={"cache_status": "Hit", "fetch_latency": 21})
    with pytest.raises(NothingToBill, match="proxy_cache_hit"):
        read_inference(record)
    assert read_inference(record, bill_proxy_cache_hits=True).counts == {"input": 28, "output": 20}
    assert read_inference(entry(cache={"cache_status": "Miss"})).counts == {"input": 28, "output": 20}


def test_entries_that_called_no_model_bill_nothing():
    not_ai = {key: value for key, value in ENTRY.items() if key != "ai"}
    refused = entry(usage={"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    for record in (not_ai, refused):
        with pytest.raises(NothingToBill, match="no_usage"):
            read_inference(record)


def test_two_plugin_calls_to_one_model_bill_together_and_to_two_models_are_a_dead_letter():
    transformer = {"usage": {"prompt_token": 10, "completion_token": 5},
                   "meta": {"request_model": "gpt-4o", "response_model": "gpt-4o-2024-08-06"}}
    record = copy.deepcopy(ENTRY)
    record["ai"]["ai-request-transformer"] = transformer
    assert read_inference(record).counts == {"input": 38, "output": 25}
    record["ai"]["ai-request-transformer"]["meta"]["response_model"] = "gpt-4o-mini"
    with pytest.raises(RecordError, match="several models"):
        read_inference(record)


def test_bad_counts_and_times_are_clear_errors():
    with pytest.raises(RecordError, match="prompt_tokens must be a whole number") as error:
        read_inference(entry(usage={"prompt_tokens": "28", "completion_tokens": 20}))
    assert error.value.reason == "invalid_counts"
    with pytest.raises(RecordError, match="started_at") as error:
        read_inference({**ENTRY, "started_at": "2024-11-26T18:40:00Z"})
    assert error.value.reason == "invalid_timestamp"
    # nginx's start time in seconds, times 1000, written with a fraction by some encoders.
    assert read_inference({**ENTRY, "started_at": 1732646400123.0001}).timestamp_ms == 1732646400123


def test_a_kong_log_attributed_by_its_consumer_bills_once_however_often_it_is_delivered():
    summary, sink = meter_lines([ENTRY, ENTRY], {"subscription_from": ["consumer.custom_id"]})
    assert summary.metered == 2 and not sink.dead_letters
    first, second = sink.events[:2], sink.events[2:]
    assert [e.transaction_id for e in first] == [e.transaction_id for e in second]
    assert {(e.external_subscription_id, e.properties["token_type"], e.properties["tokens"]) for e in first} == {
        ("sub_acme", "input", 28), ("sub_acme", "output", 20)}
    assert first[0].timestamp == "1732646400.123"


def test_a_gateway_log_wrapping_the_response_itself_is_not_taken_for_kongs():
    wrapped = {"started_at": 1732646400123, "latencies": {"kong": 1, "proxy": 2, "request": 3},
               "request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
               "response": {"id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "model": "gpt-4o", "created": 1732646400,
                            "usage": {"prompt_tokens": 9, "completion_tokens": 2}}}
    assert read_inference(wrapped).counts == {"input": 9, "output": 2, "cached_input": 0, "reasoning": 0}
