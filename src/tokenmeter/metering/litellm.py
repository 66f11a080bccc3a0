"""LiteLLM proxy `StandardLoggingPayload`s: what its S3, SQS and custom loggers write for every call.

The payload's prompt/completion counts follow OpenAI (cached reads inside the prompt, reasoning inside the
completion); the split comes from the provider's response it embeds. LiteLLM puts Anthropic's cache writes
inside prompt_tokens when it also reports them as prompt_tokens_details.cache_creation_tokens (its newer
releases); older releases reported them only beside it, as cache_creation_input_tokens.
"""

from __future__ import annotations

from typing import Any

from .fields import NothingToBill, carve, count_at, id_at, model_at, object_at, unix_seconds_at, with_counts
from .records import INVALID_RECORD, Inference, RecordError

FAILED_CALL = "failed_call"
PROXY_CACHE_HIT = "proxy_cache_hit"


def is_litellm(data: dict[str, Any]) -> bool:
    return "call_type" in data and "status" in data and ("prompt_tokens" in data or "completion_tokens" in data)


def read_litellm(data: dict[str, Any], bill_cache_hits: bool) -> Inference:
    status = data.get("status")
    if status == "failure":
        raise NothingToBill(FAILED_CALL)
    if status != "success":
        raise RecordError(INVALID_RECORD, f"'status' must be 'success' or 'failure', got {status!r}")
    if data.get("cache_hit") is True and not bill_cache_hits:
        raise NothingToBill(PROXY_CACHE_HIT)
    response = data.get("response")
    response = response if isinstance(response, dict) else {}
    model = model_at(response, "model") if isinstance(response.get("model"), str) else model_at(data, "model")
    usage = object_at(response, "usage")
    prompt_details = object_at(usage, "prompt_tokens_details")
    completion_details = object_at(usage, "completion_tokens_details")
    writes_inside = "cache_creation_tokens" in prompt_details
    writes = _either(prompt_details, "cache_creation_tokens", usage, "cache_creation_input_tokens")
    cached = _either(prompt_details, "cached_tokens", usage, "cache_read_input_tokens")
    prompt = count_at(data, "prompt_tokens", "prompt_tokens")
    inputs = {"cached_input": cached, "cache_write": writes if writes_inside else 0,
              "input_audio": count_at(prompt_details, "audio_tokens", "prompt_tokens_details.audio_tokens"),
              "input_image": count_at(prompt_details, "image_tokens", "prompt_tokens_details.image_tokens")}
    outputs = {"reasoning": count_at(completion_details, "reasoning_tokens", "completion_tokens_details.reasoning_tokens"),
               "output_audio": count_at(completion_details, "audio_tokens", "completion_tokens_details.audio_tokens"),
               "output_image": count_at(completion_details, "image_tokens", "completion_tokens_details.image_tokens")}
    counts = {**carve("input", prompt, inputs), **carve("output", count_at(data, "completion_tokens", "completion_tokens"),
                                                        outputs)}
    if writes and not writes_inside:
        counts["cache_write"] = writes
    timestamp = unix_seconds_at(data, "endTime") if data.get("endTime") is not None else None
    return with_counts(model, id_at(data, "id"), timestamp, counts)


def _either(details: dict[str, Any], key: str, usage: dict[str, Any], fallback: str) -> int:
    """``details[key]`` where the response has it, else the count it reports beside as ``usage[fallback]``."""
    if key in details:
        return count_at(details, key, f"prompt_tokens_details.{key}")
    return count_at(usage, fallback, f"response.usage.{fallback}")
