"""Braintrust's logged spans (braintrust_spans.py): as its API returns a project's logs and as its S3 export writes
them (JSON Lines, or Parquet with objects as JSON text and numbers as doubles). Token metrics in the convention of
braintrust-sdk's wrappers (OpenAI's: the prompt holds its cache reads and writes, the completion its reasoning);
the counts expected below are worked out by hand from the provider's own numbers."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
from conftest import OneObject, meter_lines

from tokenmeter.metering.s3_objects import s3_records

CONFIG = {"subscription_from": ["metadata.customer"]}
ROOT = "5b8efff798038103d269b633813fc60c"


def span(span_id: str, kind: str = "llm", model: str | None = "gpt-4o-2024-08-06", **metrics) -> dict:
    """A span row as `/v1/project_logs/{id}/fetch` returns it."""
    return {"id": f"row-{span_id}", "_xact_id": "1000194", "created": "2026-11-20T10:15:04.950Z", "project_id": "p1",
            "log_id": "g", "span_id": span_id, "root_span_id": ROOT, "span_parents": [ROOT], "is_root": False,
            "span_attributes": {"name": "Chat Completion", "type": kind},
            "metadata": {"customer": "sub_42", **({"model": model, "provider": "openai"} if model else {})},
            "metrics": {"start": 1795169702.12, "end": 1795169704.905, **metrics},
            "input": [{"role": "user", "content": "hi"}], "output": [{"role": "assistant", "content": "hello"}]}


# gpt-4o: 2,000 prompt tokens, 800 of them from the cache; 310 completion tokens.
OPENAI = span("0a1b2c3d4e5f6071", prompt_tokens=2000, completion_tokens=310, tokens=2310, prompt_cached_tokens=800,
              completion_reasoning_tokens=0, time_to_first_token=0.41)


def test_an_llm_span_bills_its_metrics_with_the_cache_taken_out_of_the_prompt():
    summary, sink = meter_lines([OPENAI], CONFIG)
    assert sink.totals() == {("sub_42", "input"): 1200, ("sub_42", "cached_input"): 800, ("sub_42", "output"): 310}
    assert {e.properties["model"] for e in sink.events} == {"gpt-4o-2024-08-06"}
    assert {e.timestamp for e in sink.events} == {"1795169704.905"}  # its end, 2026-11-20T10:15:04.905Z
    assert summary.records == 1 and not sink.dead_letters


def test_anthropic_writes_by_ttl_or_whole_and_reasoning_bill_once_each():
    # Anthropic reported 10 input, 1,000 read, 500 written (200 for 5 minutes, 300 for an hour), 20 output; the
    # wrapper adds the reads and writes to the prompt, and keeps either the TTL parts or the whole write.
    parts = span("1b", model="claude-sonnet-4-5", prompt_tokens=1510, completion_tokens=20, prompt_cached_tokens=1000,
                 prompt_cache_creation_5m_tokens=200, prompt_cache_creation_1h_tokens=300)
    whole = span("2c", model="claude-sonnet-4-5", prompt_tokens=1510, completion_tokens=20, prompt_cached_tokens=1000,
                 prompt_cache_creation_tokens=500)
    # o3: 300 of its 500 completion tokens were reasoning.
    reasoning = span("3d", model="o3", prompt_tokens=40, completion_tokens=500, completion_reasoning_tokens=300)
    _, sink = meter_lines([parts, whole, reasoning], CONFIG)
    assert sink.totals() == {("sub_42", "input"): 10 + 10 + 40, ("sub_42", "cached_input"): 2000,
                             ("sub_42", "cache_write"): 1000, ("sub_42", "output"): 20 + 20 + 200,
                             ("sub_42", "reasoning"): 300}


def test_only_model_calls_bill_and_the_rest_say_why():
    turn = span("4e", "task", prompt_tokens=2000, completion_tokens=310, tokens=2310)  # an agent turn: its calls' sum
    tool = span("5f", "tool", model=None)
    running = {**OPENAI, "span_id": "6a", "metrics": {"start": 1795169702.12}}
    unnamed = span("7b", model=None, prompt_tokens=5, completion_tokens=1)
    summary, sink = meter_lines([turn, tool, running, unnamed], CONFIG)
    assert dict(summary.skipped) == {"aggregate_span": 1, "no_usage": 1, "not_final": 1}
    assert [letter.reason for letter in sink.dead_letters] == ["invalid_record"] and not sink.events


def test_a_parquet_export_row_bills_as_the_same_span_from_the_api():
    # The export's object columns as JSON text; its metrics as doubles, as a JSON number column becomes.
    row = {**OPENAI, "span_attributes": json.dumps(OPENAI["span_attributes"]), "metadata": json.dumps(OPENAI["metadata"]),
           "metrics": json.dumps({key: float(value) for key, value in OPENAI["metrics"].items()}),
           "input": json.dumps(OPENAI["input"]), "output": json.dumps(OPENAI["output"])}
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([row]), sink, compression="snappy")
    [record] = list(s3_records(OneObject(sink.getvalue()), "exports", "braintrust/logs/part-0.parquet"))
    _, from_export = meter_lines([record.value], CONFIG)
    _, from_api = meter_lines([OPENAI], CONFIG)
    assert from_export.totals() == from_api.totals()
    assert [(e.transaction_id, e.timestamp) for e in from_export.events] == [
        (e.transaction_id, e.timestamp) for e in from_api.events]


def test_a_page_of_the_api_s_answer_bills_each_span_of_it():
    page = {"events": [OPENAI, span("8c", "task", prompt_tokens=2000, completion_tokens=310)], "cursor": "c1"}
    summary, from_page = meter_lines([page], CONFIG)
    _, alone = meter_lines([OPENAI], CONFIG)
    assert [(e.transaction_id, e.timestamp) for e in from_page.events] == [(e.transaction_id, e.timestamp)
                                                                           for e in alone.events]
    assert summary.records == 2 and dict(summary.skipped) == {"aggregate_span": 1}
