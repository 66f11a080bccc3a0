"""Pydantic AI's usage, as an app logs it: a `ModelResponse` from the run's messages (`kind: response`, as
`ModelMessagesTypeAdapter` dumps them: `usage`, `model_name`, `provider_response_id`, `timestamp`), or a run's
`usage()` written out (`dataclasses.asdict`) with the `model` the app called beside it.

Pydantic AI counts the way genai-prices prices (`pydantic_ai/usage.py` and its model classes): `input_tokens` is
every input token, `cache_read_tokens`, `cache_write_tokens` and `input_audio_tokens` are parts of it
(`cache_audio_read_tokens` a part of both the cache reads and the audio); `output_tokens` is every output token,
`output_audio_tokens` a part of it, and so is the reasoning its `details` name (`reasoning_tokens` from OpenAI,
`thoughts_tokens` from Google, `thinking_tokens` from Anthropic). A `ModelRequest` of the same messages
(`kind: request`, the prompt's parts) bills nothing: its response does.
"""

from __future__ import annotations

from typing import Any

from .fields import NothingToBill, carve, count_at, id_at, model_at, object_at, time_at, with_counts
from .records import INVALID_COUNTS, NO_USAGE, Inference, RecordError

_OWN_KEYS = frozenset(("cache_read_tokens", "cache_write_tokens", "input_audio_tokens"))
_REASONING_DETAILS = ("reasoning_tokens", "thoughts_tokens", "thinking_tokens")


def is_pydantic_ai(data: dict[str, Any]) -> bool:
    usage = data.get("usage")
    if data.get("kind") == "request" and isinstance(data.get("parts"), list):
        return usage is None
    return isinstance(usage, dict) and "input_tokens" in usage and not _OWN_KEYS.isdisjoint(usage)


def read_pydantic_ai(data: dict[str, Any]) -> Inference:
    usage = data.get("usage")
    if usage is None:
        raise NothingToBill(NO_USAGE)  # a request: its response bills
    model = model_at(data, "model_name") if "model_name" in data else model_at(data, "model")
    cached_audio = count_at(usage, "cache_audio_read_tokens", "usage.cache_audio_read_tokens")
    audio = count_at(usage, "input_audio_tokens", "usage.input_audio_tokens")
    if cached_audio > audio:
        raise RecordError(INVALID_COUNTS, f"usage.cache_audio_read_tokens ({cached_audio}) exceed the audio input "
                                          f"tokens they are part of ({audio})")
    details = object_at(usage, "details")
    reasoning = next((count_at(details, key, f"usage.details.{key}") for key in _REASONING_DETAILS if key in details), 0)
    counts = {
        **carve("input", count_at(usage, "input_tokens", "usage.input_tokens"), {
            "cached_input": count_at(usage, "cache_read_tokens", "usage.cache_read_tokens"),
            "cache_write": count_at(usage, "cache_write_tokens", "usage.cache_write_tokens"),
            "input_audio": audio - cached_audio}),
        **carve("output", count_at(usage, "output_tokens", "usage.output_tokens"), {
            "reasoning": reasoning,
            "output_audio": count_at(usage, "output_audio_tokens", "usage.output_audio_tokens")}),
    }
    return with_counts(model, id_at(data, "provider_response_id"), time_at(data, "timestamp"), counts)
