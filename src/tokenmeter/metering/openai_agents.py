"""The OpenAI Agents SDK's traces, as an app's trace processor writes them (`Span.export()` and `Trace.export()`: the
objects the SDK's own exporter sends to OpenAI's traces endpoint, and its ConsoleSpanExporter prints).

A span is `{"object": "trace.span", "id": "span_...", "trace_id", "parent_id", "started_at", "ended_at",
"span_data": {"type", ...}, "error"}` (`agents/tracing/spans.py`, `span_data.py`):
- a generation span (`type: generation`: a call through the Chat Completions API or LiteLLM) holds the call's
  `model` and its `usage` as the SDK counts it (`agents/usage.py`: OpenAI's counting, cached tokens and cache
  writes inside `input_tokens`, reasoning inside `output_tokens`): it bills, under its trace's and its own id, at
  its end.
- a response span (`type: response`: a Responses API call) holds the response's id and, in newer releases, its
  usage, but not its model: it cannot be priced, so it is a dead letter that says where the model is.
- the task and turn spans (`type: custom`, `data.sdk_span_type`) sum the calls of a run or a turn:
  `agent_summary`, since the calls bill. Every other span (agent, function, handoff, guardrail, ...) and the
  trace itself bill nothing.
"""

from __future__ import annotations

from typing import Any

from .fields import NothingToBill, id_at, model_at, object_at, rfc3339_at, with_counts
from .openai_usage import openai_counts
from .records import AGENT_SUMMARY, INVALID_RECORD, NO_USAGE, Inference, RecordError

_SUMMARIES = frozenset(("task", "turn"))


def is_agents_trace(data: dict[str, Any]) -> bool:
    kind = data.get("object")
    if kind == "trace.span":
        return type(data.get("span_data")) is dict and "trace_id" in data
    return kind == "trace" and "workflow_name" in data


def read_agents_trace(data: dict[str, Any]) -> Inference:
    if data["object"] == "trace":
        raise NothingToBill(NO_USAGE)
    span = data["span_data"]
    kind = span.get("type")
    if kind == "custom" and type(span.get("data")) is dict and span["data"].get("sdk_span_type") in _SUMMARIES:
        raise NothingToBill(AGENT_SUMMARY)
    if kind not in ("generation", "response") or span.get("usage") is None:
        raise NothingToBill(NO_USAGE)
    if kind == "response":
        raise RecordError(INVALID_RECORD, "an OpenAI Agents SDK response span names no model (Span.export() leaves "
                                          "the response out): log the response itself, or bill from another source")
    counts = openai_counts(object_at(span, "usage"))
    timestamp = rfc3339_at(data, "ended_at") if data.get("ended_at") is not None else rfc3339_at(data, "started_at")
    # Span ids are the SDK's random ones, but an app may give its own: within its trace, as OpenTelemetry's are.
    span_id, trace_id = id_at(data, "id"), id_at(data, "trace_id")
    request_id = f"{trace_id}/{span_id}" if span_id is not None and trace_id is not None else span_id
    return with_counts(model_at(span, "model"), request_id, timestamp, counts)
