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
    usage = message["usage_metadata"]
    metadata = object_at(message, "response_metadata")
    inputs, outputs = object_at(usage, "input_token_details"), object_at(usage, "output_token_details")
    counts = {
        **carve("input", count_at(usage, "input_tokens", "usage_metadata.input_tokens"), {
            "cached_input": count_at(inputs, "cache_read", "input_token_details.cache_read"),
            "cache_write": count_at(inputs, "cache_creation", "input_token_details.cache_creation"),
            "input_audio": count_at(inputs, "audio", "input_token_details.audio"),
        }),
        **carve("output", count_at(usage, "output_tokens", "usage_metadata.output_tokens"), {
            "reasoning": count_at(outputs, "reasoning", "output_token_details.reasoning"),
            "output_audio": count_at(outputs, "audio", "output_token_details.audio"),
        }),
    }
    request_id = id_at(metadata, "id") if metadata.get("id") else id_at(message, "id")
    return with_counts(_model(metadata, "response_metadata", message), request_id, None, counts)


def _model(holder: dict[str, Any], name: str, outer: dict[str, Any] | None = None) -> str:
    for source, key in ((holder, "model_name"), (holder, "model"), (outer or {}, "model")):
        if source.get(key) is not None:
            return model_at(source, key)
    raise RecordError(INVALID_RECORD, f"a LangChain record whose {name} names no model (model_name or model)")
