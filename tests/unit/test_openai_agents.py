"""The OpenAI Agents SDK's traces as an app's trace processor writes them: `Span.export()` and `Trace.export()`, shapes
from the SDK's `agents/tracing/spans.py`, `span_data.py` and `usage.py`; the expected counts are worked out by hand."""

import json

from conftest import Collect, meter_lines

from tokenmeter.core import parse_config
from tokenmeter.metering.metering import Meter
from tokenmeter.metering.records import RawRecord
from tokenmeter.metering.tokenizer_pool import TokenizerPool

TRACE = "trace_3f2a9c1e7b4d4e0f8a6b5c4d3e2f1a0b"


def span(span_id: str, data: dict, parent: str | None = "span_0a1b2c3d4e5f60718293a4b5") -> dict:
    return {"object": "trace.span", "id": span_id, "trace_id": TRACE, "parent_id": parent,
            "started_at": "2025-09-30T08:15:02.104211+00:00", "ended_at": "2025-09-30T08:15:04.519733+00:00",
            "span_data": data, "error": None}


def usage(input_: int, output: int, cached: int = 0, written: int = 0, reasoning: int = 0) -> dict:
    return {"requests": 1, "input_tokens": input_, "output_tokens": output, "total_tokens": input_ + output,
            "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
            "output_tokens_details": {"reasoning_tokens": reasoning}}


# A call through the Chat Completions API: 1200 input of which 1000 cached, 300 output of which 100 reasoning.
CHAT = span("span_9c8b7a6f5e4d3c2b1a098765", {"type": "generation", "input": [], "output": [], "model": "o4-mini",
                                              "model_config": {}, "usage": usage(1200, 300, cached=1000, reasoning=100)})
# One through LiteLLM to Anthropic: its prompt holds the cache reads (3000) and writes (1500).
LITELLM = span("span_1f2e3d4c5b6a79880716253a", {"type": "generation", "input": [], "output": [],
                                                 "model": "anthropic/claude-sonnet-4-20250514",
                                                 "model_config": {"model_impl": "litellm"},
                                                 "usage": usage(5000, 50, cached=3000, written=1500)})


def test_a_runs_spans_bill_each_model_call_once_and_nothing_else():
    run = [
        {"object": "trace", "id": TRACE, "workflow_name": "Agent workflow", "group_id": None, "metadata": None},
        span("span_0a1b2c3d4e5f60718293a4b5", {"type": "agent", "name": "Assistant", "handoffs": [],
                                               "tools": ["get_weather"], "output_type": "str"}, parent=None),
        CHAT,
        span("span_77aa66bb55cc44dd33ee22ff", {"type": "function", "name": "get_weather", "input": "{}",
                                               "output": "sunny", "mcp_data": None}),
        LITELLM,
        span("span_5d4c3b2a1f0e9d8c7b6a5f4e", {"type": "custom", "name": "turn", "data": {
            "sdk_span_type": "turn", "turn": 1, "agent_name": "Assistant", "input_tokens": 6200, "output_tokens": 350,
            "cached_input_tokens": 4000, "cache_write_input_tokens": 1500}}),
        span("span_6e5d4c3b2a1f0e9d8c7b6a5f", {"type": "custom", "name": "task", "data": {
            "sdk_span_type": "task", "name": "Agent workflow", "usage": {
                "input_tokens": 6200, "output_tokens": 350, "cached_input_tokens": 4000, "cache_write_input_tokens": 1500,
                "requests": 2, "total_tokens": 6550}}}, parent=None),
    ]
    summary, sink = meter_lines(run, {"default_subscription": "sub_7"})
    billed = {(e.properties["model"], e.properties["token_type"]): e.properties["tokens"] for e in sink.events}
    assert billed == {("o4-mini", "input"): 200, ("o4-mini", "cached_input"): 1000, ("o4-mini", "output"): 200,
                      ("o4-mini", "reasoning"): 100,
                      ("anthropic/claude-sonnet-4-20250514", "input"): 500,
                      ("anthropic/claude-sonnet-4-20250514", "cached_input"): 3000,
                      ("anthropic/claude-sonnet-4-20250514", "cache_write"): 1500,
                      ("anthropic/claude-sonnet-4-20250514", "output"): 50}
    assert len(sink.events) == 8 and {e.timestamp for e in sink.events} == {"1759220104.519"}  # each call's end
    assert dict(summary.skipped) == {"no_usage": 3, "agent_summary": 2} and not sink.dead_letters


def test_a_response_span_names_no_model_so_it_is_a_dead_letter_that_says_so():
    with_usage = span("span_2b3c4d5e6f708192a3b4c5d6", {"type": "response", "response_id": "resp_68dbd2bed1ec81",
                                                        "usage": usage(900, 40)})
    before_usage = span("span_3c4d5e6f708192a3b4c5d6e7", {"type": "response", "response_id": "resp_68dbd2bed1ec82"})
    summary, sink = meter_lines([with_usage, before_usage], {"default_subscription": "sub_7"})
    assert not sink.events
    [letter] = sink.dead_letters
    assert letter.reason == "invalid_record" and "names no model" in letter.detail
    assert dict(summary.skipped) == {"no_usage": 1}  # a release that left the usage out of it too


def test_the_console_exporters_printed_span_bills_as_the_span_does():
    # ConsoleSpanExporter prints f"[Exporter] Export span: {item.export()}": the dict as Python writes it.
    def billed(text: str) -> list:
        sink = Collect()
        meter = Meter(parse_config({"default_subscription": "sub_7"}), TokenizerPool({}), sink)
        # As a trigger hands a log line over: its JSON-looking part found past the prefix.
        meter.add(RawRecord("cloudwatch:g:s:1", "cwl:1", text, 1_759_300_000_000, json_at=text.find("{")))
        meter.finish()
        assert not sink.dead_letters
        return sorted((e.transaction_id, e.timestamp, e.properties["tokens"]) for e in sink.events)

    printed = billed(f"[Exporter] Export span: {CHAT!r}")
    assert printed == billed(json.dumps(CHAT)) and len(printed) == 4


def test_the_same_span_id_in_two_traces_is_two_calls():
    # An app may give its spans ids of its own; like OpenTelemetry's, they are unique within a trace only.
    other = {**CHAT, "trace_id": "trace_0b1c2d3e4f5a4b6c8d7e9f0a1b2c3d4e"}
    summary, sink = meter_lines([CHAT, other, CHAT], {"default_subscription": "sub_7"})
    assert len({e.transaction_id for e in sink.events}) == 8  # 4 types x 2 calls; the third line repeats the first
    assert sum(e.properties["tokens"] for e in {e.transaction_id: e for e in sink.events}.values()) == 2 * 1500
