"""LangChain's own records of a model call, as an app built on LangChain logs them (the seed article's app is one).

- A chat model's `AIMessage`, dumped (`model_dump()`, or LangChain's `dumpd()`, which puts it under `kwargs`):
  `usage_metadata` as LangChain normalises every provider's usage, with cache reads and writes and audio inside
  `input_tokens`, reasoning and audio inside `output_tokens` (`input_token_details`, `output_token_details`),
  and `response_metadata`, which names the model (`model_name`, or `model`) and the provider's response id.
- What a callback's `on_llm_end` receives, the `LLMResult`, dumped: `llm_output` holds the provider's
  OpenAI-shaped `token_usage` and the `model_name`; `run[0].run_id` is the call's id. Logged alone, `llm_output`
  is read the same way.
"""

from __future__ import annotations

from typing import Any

from .fields import carve, count_at, id_at, model_at, object_at, with_counts
from .openai_usage import openai_counts
from .records import INVALID_RECORD, Inference, RecordError

_USAGE_NAMES = ("input_tokens", "output_tokens", "input_token_details", "output_token_details")


def langchain_record(data: dict[str, Any]) -> dict[str, Any] | None:
    """The message or result a LangChain record holds (a dumpd() message unwrapped), None for any other record."""
    if data.get("lc") == 1 and isinstance(data.get("kwargs"), dict):
        data = data["kwargs"]
    if isinstance(data.get("usage_metadata"), dict):
        return data
    output = data.get("llm_output")
    if isinstance(output, dict) and isinstance(output.get("token_usage"), dict):
        return data
    if isinstance(data.get("token_usage"), dict) and "model_name" in data:
        return {"llm_output": data}
    return None


def read_langchain(record: dict[str, Any]) -> Inference:
    """The inference of a record ``langchain_record`` returned."""
    if "usage_metadata" in record:
        return _message(record)
    output = record["llm_output"]
    runs = record.get("run")
    run = runs[0] if isinstance(runs, list) and runs and isinstance(runs[0], dict) else {}
    return with_counts(_model(output, "llm_output"), id_at(run, "run_id"), None, openai_counts(output["token_usage"]))


def _message(message: dict[str, Any]) -> Inference:
    metadata = object_at(message, "response_metadata")
    counts = usage_metadata_counts(message["usage_metadata"], "usage_metadata")
    request_id = id_at(metadata, "id") if metadata.get("id") else id_at(message, "id")
    return with_counts(_model(metadata, "response_metadata", message), request_id, None, counts)


def usage_metadata_counts(usage: dict[str, Any], where: str, names: tuple[str, ...] = _USAGE_NAMES) -> dict[str, int]:
    """Token types from LangChain's `UsageMetadata` (or LangSmith's copy of it, under ``names``): its input and
    output tokens hold their details, which are taken out of them. langchain-anthropic writes a cache write's TTL
    parts beside it (`ephemeral_5m_input_tokens`, `ephemeral_1h_input_tokens`); some of its releases then zero
    `cache_creation`, so the parts are the writes where it is 0 (where it is not, they only split it)."""
    total_in, total_out, details_in, details_out = names
    inputs, outputs = object_at(usage, details_in), object_at(usage, details_out)
    writes = (count_at(inputs, "cache_creation", f"{details_in}.cache_creation")
              or count_at(inputs, "cache_write", f"{details_in}.cache_write")  # (LangSmith's name for them)
              or sum(count_at(inputs, key, f"{details_in}.{key}")
                     for key in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")))
    return {
        **carve("input", count_at(usage, total_in, f"{where}.{total_in}"), {
            "cached_input": count_at(inputs, "cache_read", f"{details_in}.cache_read"),
            "cache_write": writes,
            "input_audio": count_at(inputs, "audio", f"{details_in}.audio"),
        }),
        **carve("output", count_at(usage, total_out, f"{where}.{total_out}"), {
            "reasoning": count_at(outputs, "reasoning", f"{details_out}.reasoning"),
            "output_audio": count_at(outputs, "audio", f"{details_out}.audio"),
        }),
    }


def _model(holder: dict[str, Any], name: str, outer: dict[str, Any] | None = None) -> str:
    for source, key in ((holder, "model_name"), (holder, "model"), (outer or {}, "model")):
        if source.get(key) is not None:
            return model_at(source, key)
    raise RecordError(INVALID_RECORD, f"a LangChain record whose {name} names no model (model_name or model)")
