"""Apache APISIX's log entries for requests its ai-proxy plugin served: the entry as its loggers write it
(`apisix/utils/log-util.lua`'s full log) with the `llm_summary` the plugin adds (`ai-proxy/base.lua`);
expected counts worked out by hand."""

import json

import pytest
from conftest import meter_lines

from tokenmeter.metering.formats import NothingToBill, read_inference
from tokenmeter.metering.records import RecordError

ENTRY = {
    "request": {"url": "http://127.0.0.1:9080/anything", "uri": "/anything", "method": "POST", "size": 212,
                "querystring": {}, "headers": {"host": "127.0.0.1:9080", "content-type": "application/json",
                                               "x-request-id": "6f9c1b1e-8f0b-4c43-9a4e-2f1d7b3c5a10"}},
    "response": {"status": 200, "size": 1033, "headers": {"content-type": "application/json"}},
    "server": {"hostname": "apisix-0", "version": "3.14.0"}, "upstream": "162.159.140.245:443",
    "route_id": "openai-chat", "service_id": "", "consumer": {"username": "acme"}, "client_ip": "10.0.0.7",
    "start_time": 1732646400123.0, "latency": 1542.0, "upstream_latency": 1530, "apisix_latency": 12.0,
    "llm_summary": {"request_model": "gpt-4o", "model": "gpt-4o-mini", "duration": 311, "prompt_tokens": 23,
                    "completion_tokens": 8, "upstream_response_time": 1530},
}


def test_the_summary_bills_the_model_apisix_called_at_the_request_start():
    inference = read_inference(ENTRY)
    assert (inference.model, inference.request_id, inference.timestamp_ms, inference.counts) == (
        "gpt-4o-mini", "6f9c1b1e-8f0b-4c43-9a4e-2f1d7b3c5a10", 1732646400123, {"input": 23, "output": 8})


def test_a_logged_response_body_with_the_same_counts_splits_them():
    body = {"id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "model": "gpt-4o-mini-2024-07-18",
            "usage": {"prompt_tokens": 23, "completion_tokens": 8, "total_tokens": 31,
                      "prompt_tokens_details": {"cached_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 5}}}
    record = {**ENTRY, "response": {**ENTRY["response"], "body": json.dumps(body)}}
    assert read_inference(record).counts == {"input": 23, "cached_input": 0, "output": 3, "reasoning": 5}


def test_a_custom_log_format_without_time_or_headers_leaves_the_log_lines_own():
    record = {"llm_summary": {"model": "deepseek-chat", "prompt_tokens": 40, "completion_tokens": 2},
              "client_ip": "10.0.0.7", "route_id": "r1"}
    summary, sink = meter_lines([record, record], {"default_subscription": "sub_1"})
    assert summary.metered == 2 and not sink.dead_letters
    # Two log lines, no request id: two inferences, each under its own line's identity and time.
    assert len({e.transaction_id for e in sink.events}) == 4
    assert {e.timestamp for e in sink.events} == {"1732646500.000"}


def test_attributed_by_its_consumer():
    _, sink = meter_lines([ENTRY], {"subscription_from": ["consumer.username"]})
    assert {(e.external_subscription_id, e.properties["token_type"], e.properties["tokens"]) for e in sink.events} == {
        ("acme", "input", 23), ("acme", "output", 8)}


def test_a_request_that_counted_nothing_bills_nothing_and_bad_fields_are_clear_errors():
    with pytest.raises(NothingToBill, match="no_usage"):
        read_inference({**ENTRY, "llm_summary": {"model": "gpt-4o", "prompt_tokens": 0, "completion_tokens": 0}})
    with pytest.raises(RecordError, match="names no model"):
        read_inference({**ENTRY, "llm_summary": {"prompt_tokens": 3, "completion_tokens": 1}})
    with pytest.raises(RecordError, match="start_time"):
        read_inference({**ENTRY, "start_time": "2024-11-26T18:40:00Z"})
