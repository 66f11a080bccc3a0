"""LangSmith's runs (langsmith_runs.py): as its API returns them, and as its bulk export writes them to S3 in Parquet
(objects as JSON text). Token fields in LangChain's convention, as LangSmith copies them from a model's
`usage_metadata`; the counts expected below are worked out by hand from the provider's own numbers."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
from conftest import OneObject, meter_lines

from tokenmeter.metering.s3_objects import s3_records

CONFIG = {"subscription_from": ["extra.metadata.customer"]}
TRACE = "0c5e1d2a-6f3b-4e8a-9c7d-1b2a3c4d5e6f"


def run(run_id: str, run_type: str = "llm", **more) -> dict:
    """A run as `Client.read_run(id).model_dump(mode="json")` writes it (fields LangSmith leaves empty left out)."""
    return {"id": run_id, "name": "ChatOpenAI", "run_type": run_type, "start_time": "2026-11-20T10:15:02.120000",
            "end_time": "2026-11-20T10:15:04.905000", "status": "success", "error": None, "trace_id": TRACE,
            "parent_run_id": TRACE, "session_id": "9f0e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f",
            "dotted_order": f"20261120T101502120000Z{TRACE}.20261120T101502120000Z{run_id}", "tags": [],
            "extra": {"invocation_params": {"model": "gpt-4o", "_type": "openai-chat"},
                      "metadata": {"ls_provider": "openai", "ls_model_name": "gpt-4o-2024-08-06", "ls_model_type": "chat",
                                   "customer": "sub_42"}},
            "inputs": {"messages": [[{"role": "user", "content": "hi"}]]}, "outputs": {"generations": []}, **more}


# gpt-4o: 2,000 prompt tokens, 800 of them from the cache; 310 completion tokens.
OPENAI = run("1f1a7c2e-0b1e-4d7a-9a0b-3c2d1e0f9a8b", prompt_tokens=2000, completion_tokens=310, total_tokens=2310,
             prompt_token_details={"cache_read": 800}, completion_token_details={})


def test_an_llm_run_bills_its_tokens_as_langchain_counted_them():
    summary, sink = meter_lines([OPENAI], CONFIG)
    assert sink.totals() == {("sub_42", "input"): 1200, ("sub_42", "cached_input"): 800, ("sub_42", "output"): 310}
    assert {e.properties["model"] for e in sink.events} == {"gpt-4o-2024-08-06"}
    # Its end, 2026-11-20T10:15:04.905Z, as Unix seconds.
    assert {e.timestamp for e in sink.events} == {"1795169704.905"}
    assert summary.records == 1 and not sink.dead_letters


def test_anthropic_and_reasoning_runs_take_their_details_out_of_the_totals():
    # ChatAnthropic: Anthropic reported 10 input, 1,000 read, 500 written (all for an hour), 20 output; LangChain's
    # total holds all three inputs, and its later releases put the write under its TTL with cache_creation zeroed.
    anthropic = run("2a", prompt_tokens=1510, completion_tokens=20, total_tokens=1530,
                    prompt_token_details={"cache_read": 1000, "cache_creation": 0, "ephemeral_1h_input_tokens": 500},
                    extra={"metadata": {"ls_model_name": "claude-sonnet-4-5", "customer": "sub_7"}})
    # o3: 300 of its 500 completion tokens were reasoning.
    reasoning = run("3b", prompt_tokens=40, completion_tokens=500, total_tokens=540,
                    completion_token_details={"reasoning": 300},
                    extra={"metadata": {"ls_model_name": "o3", "customer": "sub_7"}})
    _, sink = meter_lines([anthropic, reasoning], CONFIG)
    assert sink.totals() == {("sub_7", "input"): 10 + 40, ("sub_7", "cached_input"): 1000, ("sub_7", "cache_write"): 500,
                             ("sub_7", "output"): 20 + 200, ("sub_7", "reasoning"): 300}


def test_only_model_calls_bill_and_the_rest_say_why():
    chain = run("4c", "chain", prompt_tokens=2000, completion_tokens=310, total_tokens=2310)  # its calls' sum
    tool = run("5d", "tool")
    pending = {**OPENAI, "id": "6e", "end_time": None, "status": "pending"}
    unnamed = {**OPENAI, "id": "7f", "extra": {"metadata": {"customer": "sub_42"}}, "inputs": {}}
    total_alone = {**OPENAI, "id": "8a", "prompt_tokens": None, "completion_tokens": None}
    summary, sink = meter_lines([chain, tool, pending, unnamed, total_alone], CONFIG)
    assert dict(summary.skipped) == {"aggregate_span": 1, "no_usage": 1, "not_final": 1}
    assert [letter.reason for letter in sink.dead_letters] == ["invalid_record", "invalid_counts"]
    assert "names no model" in sink.dead_letters[0].detail and not sink.events


def test_a_run_logged_by_the_javascript_sdk_takes_its_millisecond_times():
    _, from_api = meter_lines([OPENAI], CONFIG)
    _, from_js = meter_lines([{**OPENAI, "start_time": 1_795_169_702_120, "end_time": 1_795_169_704_905}], CONFIG)
    assert [(e.transaction_id, e.timestamp) for e in from_js.events] == [
        (e.transaction_id, e.timestamp) for e in from_api.events]


def test_a_bulk_export_row_bills_as_the_same_run_from_the_api():
    # The bulk export's columns are the run's fields; its objects are JSON text, its times timestamps.
    row = {**OPENAI, "extra": json.dumps(OPENAI["extra"]), "inputs": json.dumps(OPENAI["inputs"]),
           "outputs": json.dumps(OPENAI["outputs"]), "prompt_token_details": json.dumps({"cache_read": 800}),
           "completion_token_details": "{}", "tags": [], "error": None}
    table = pa.Table.from_pylist([row]).set_column(
        3, "start_time", pa.array([1_795_169_702_120_000], pa.int64()).cast(pa.timestamp("us", tz="UTC"))).set_column(
        4, "end_time", pa.array([1_795_169_704_905_000], pa.int64()).cast(pa.timestamp("us", tz="UTC")))
    assert table.column_names[3:5] == ["start_time", "end_time"]
    sink = io.BytesIO()
    pq.write_table(table, sink)
    [record] = list(s3_records(OneObject(sink.getvalue()), "exports", "langsmith/runs/part-0.parquet"))
    assert record.value["end_time"] == "2026-11-20T10:15:04.905000Z"
    _, from_export = meter_lines([record.value], CONFIG)
    _, from_api = meter_lines([OPENAI], CONFIG)
    assert from_export.totals() == from_api.totals()
    assert [(e.transaction_id, e.timestamp) for e in from_export.events] == [
        (e.transaction_id, e.timestamp) for e in from_api.events]


def test_a_page_of_the_api_s_answer_bills_each_run_of_it():
    page = {"runs": [OPENAI, run("9b", "chain", prompt_tokens=2000, completion_tokens=310)],
            "cursors": {"next": None}}
    summary, from_page = meter_lines([page], CONFIG)
    _, alone = meter_lines([OPENAI], CONFIG)
    assert [(e.transaction_id, e.timestamp) for e in from_page.events] == [(e.transaction_id, e.timestamp)
                                                                           for e in alone.events]
    assert summary.records == 2 and dict(summary.skipped) == {"aggregate_span": 1}
