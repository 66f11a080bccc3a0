"""LiteLLM proxy `StandardLoggingPayload`s: what its S3, SQS and custom loggers write for every call; and its
spend log rows (`LiteLLM_SpendLogs`, as `/spend/logs` answers them or a table export writes them): `request_id`
for the payload's `id`, times in RFC 3339 rather than Unix seconds, `cache_hit` as the string "True", and no
`status` before the releases that log failures there too.

The payload's prompt/completion counts are the usage of the provider's response it embeds, which splits them
(cache reads and writes, reasoning, modalities) as openai_usage.py reads any OpenAI-shaped usage.
"""

from __future__ import annotations

from typing import Any

from .fields import NothingToBill, count_at, id_at, model_at, object_at, time_at, with_counts
from .openai_usage import openai_counts
from .records import INVALID_RECORD, Inference, RecordError

FAILED_CALL = "failed_call"
PROXY_CACHE_HIT = "proxy_cache_hit"


def is_litellm(data: dict[str, Any]) -> bool:
    return ("call_type" in data and ("status" in data or "request_id" in data)
            and ("prompt_tokens" in data or "completion_tokens" in data))


def read_litellm(data: dict[str, Any], bill_cache_hits: bool) -> Inference:
    status = data.get("status", "success" if "request_id" in data else None)  # (a spend log row before status)
    if status == "failure":
        raise NothingToBill(FAILED_CALL)
    if status != "success":
        raise RecordError(INVALID_RECORD, f"'status' must be 'success' or 'failure', got {status!r}")
    if data.get("cache_hit") in (True, "True", "true") and not bill_cache_hits:
        raise NothingToBill(PROXY_CACHE_HIT)
    response = data.get("response")
    response = response if isinstance(response, dict) else {}
    model = model_at(response, "model") if isinstance(response.get("model"), str) else model_at(data, "model")
    # The payload's own counts, split as the provider response it embeds splits them (openai_usage.py).
    usage = {**object_at(response, "usage"), "prompt_tokens": count_at(data, "prompt_tokens", "prompt_tokens"),
             "completion_tokens": count_at(data, "completion_tokens", "completion_tokens")}
    counts = openai_counts(usage)
    request_id = id_at(data, "id") if "id" in data else id_at(data, "request_id")
    return with_counts(model, request_id, time_at(data, "endTime"), counts)

