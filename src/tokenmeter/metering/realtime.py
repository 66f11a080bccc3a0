"""OpenAI Realtime API `response.done` events: the one event of a spoken or typed turn that carries its usage.

`usage.input_tokens` holds text, audio and image tokens, `input_token_details.cached_tokens` the part of them
read from the cache (split again in `cached_tokens_details`); `output_tokens` holds text and audio. The response
names no model (the session does, in another event), so an app that logs these events logs its model beside
them: `response.model`, or `model` on the event.
"""

from __future__ import annotations

from typing import Any

from .fields import NothingToBill, carve, count_at, id_at, model_at, object_at, with_counts
from .records import INVALID_COUNTS, INVALID_RECORD, NO_USAGE, Inference, RecordError

REALTIME_DONE = "response.done"


def read_realtime_done(data: dict[str, Any]) -> Inference:
    """The inference of a `response.done` event; NothingToBill for one without usage (a turn cancelled before
    it began)."""
    response = object_at(data, "response")
    usage = object_at(response, "usage")
    if not usage:
        raise NothingToBill(NO_USAGE)
    holder = response if "model" in response else data if "model" in data else None
    if holder is None:
        raise RecordError(INVALID_RECORD, "a Realtime response.done names no model: log the session's model with "
                                          "it, as response.model or the event's model")
    inputs = object_at(usage, "input_token_details")
    cached = object_at(inputs, "cached_tokens_details")
    counts = {
        **carve("input", count_at(usage, "input_tokens", "usage.input_tokens"), {
            "cached_input": count_at(inputs, "cached_tokens", "input_token_details.cached_tokens"),
            "input_audio": _uncached(inputs, cached, "audio_tokens"),
            "input_image": _uncached(inputs, cached, "image_tokens"),
        }),
        **carve("output", count_at(usage, "output_tokens", "usage.output_tokens"), {
            "output_audio": count_at(object_at(usage, "output_token_details"), "audio_tokens",
                                     "output_token_details.audio_tokens"),
        }),
    }
    return with_counts(model_at(holder, "model"), id_at(response, "id"), None, counts)


def _uncached(inputs: dict[str, Any], cached: dict[str, Any], key: str) -> int:
    """A modality's input tokens not read from the cache (those are in cached_input)."""
    total = count_at(inputs, key, f"input_token_details.{key}")
    from_cache = count_at(cached, key, f"input_token_details.cached_tokens_details.{key}")
    if from_cache > total:
        raise RecordError(INVALID_COUNTS, f"cached_tokens_details.{key} {from_cache} exceeds input_token_details."
                                          f"{key} {total}")
    return total - from_cache
