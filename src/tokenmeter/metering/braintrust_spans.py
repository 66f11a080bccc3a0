"""Braintrust's logged spans, as its API returns a project's logs (`/v1/project_logs/{id}/fetch`, one by one or a
page of its answer; SQL) and its S3 export automations write them (JSON Lines or Parquet; an object column possibly
as JSON text).

A span is a row with `span_id`, `root_span_id`, `span_attributes` (`name`, `type`: llm, task, function, tool, eval,
score), `metadata` (its wrappers put the `model` there) and `metrics`: `start` and `end` in Unix seconds and the
tokens, in OpenAI's convention whatever the provider (braintrust-sdk's wrappers: `prompt_tokens` holds
`prompt_cached_tokens`, `prompt_cache_creation_tokens` or its TTL parts `prompt_cache_creation_5m_tokens` /
`_1h_tokens`, and `prompt_audio_tokens`; `completion_tokens` holds `completion_reasoning_tokens` and
`completion_audio_tokens`). Only `llm` spans are model calls: a task span of an agent's turn carries its calls'
sum (`aggregate_span`). A span not ended is `not_final`. Identity: its root span and span; time: its end.
"""

from __future__ import annotations

from typing import Any

from .fields import (
    NothingToBill,
    carve,
    count_at,
    first_model,
    objects_read_back,
    page_items,
    unix_seconds_at,
    with_counts,
)
from .otlp import AGGREGATE_SPAN
from .records import NO_USAGE, NOT_FINAL, Inference

_OBJECTS = ("span_attributes", "metrics", "metadata")
_TOKENS = ("prompt_tokens", "completion_tokens", "tokens")


def braintrust_span(data: dict[str, Any]) -> dict[str, Any] | None:
    """The span ``data`` is, its objects that an export wrote as JSON text read back (so that attribution reaches
    `metadata`), else None."""
    if type(data.get("span_id")) is not str or type(data.get("root_span_id")) is not str:
        return None
    span = objects_read_back(data, _OBJECTS)
    if type(span.get("span_attributes")) is not dict or type(span.get("metrics")) is not dict:
        return None
    return span


def api_events(data: dict[str, Any]) -> list[Any] | None:
    """The spans of a page of the API's answer (`{"events": [...], "cursor": ...}`), else None."""
    return page_items(data, "events", braintrust_span)


def read_braintrust(span: dict[str, Any]) -> Inference:
    metrics = {key: _whole(value) for key, value in span["metrics"].items()}
    has_tokens = any(metrics.get(key) for key in _TOKENS)
    if span["span_attributes"].get("type") != "llm":
        raise NothingToBill(AGGREGATE_SPAN if has_tokens else NO_USAGE)
    if metrics.get("end") is None:
        raise NothingToBill(NOT_FINAL)
    if not has_tokens:
        raise NothingToBill(NO_USAGE)
    def at(key: str) -> int:
        return count_at(metrics, key, f"metrics.{key}")

    # The wrappers keep a cache write's TTL parts instead of its whole where the provider split it.
    ttl_parts = ("prompt_cache_creation_5m_tokens", "prompt_cache_creation_1h_tokens")
    writes = sum(map(at, ttl_parts)) if any(key in metrics for key in ttl_parts) else at("prompt_cache_creation_tokens")
    counts = {
        **carve("input", at("prompt_tokens"), {"cached_input": at("prompt_cached_tokens"), "cache_write": writes,
                                               "input_audio": at("prompt_audio_tokens")}),
        **carve("output", at("completion_tokens"), {"reasoning": at("completion_reasoning_tokens"),
                                                    "output_audio": at("completion_audio_tokens")}),
    }
    metadata = span.get("metadata") if type(span.get("metadata")) is dict else {}
    model = first_model(metadata, ("model",), "an llm span's metadata")
    identity = f"{span['root_span_id']}/{span['span_id']}"
    return with_counts(model, identity, unix_seconds_at(metrics, "end"),
                       {kind: n for kind, n in counts.items() if n})


def _whole(value: Any) -> Any:
    # Braintrust's metrics are JSON numbers: a Parquet export may hold its counts as doubles (12.0).
    return int(value) if type(value) is float and value.is_integer() and abs(value) < 2**53 else value

