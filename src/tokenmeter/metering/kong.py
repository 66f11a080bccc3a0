"""Kong Gateway's log entries (its file-log, http-log, tcp-log ... plugins: one JSON object per request) for
requests its AI plugins served.

The AI plugins add an `ai` object: one section per plugin call to a model, `usage` and `meta` in each. Kong 3.8
and later write one section, `proxy`, with `usage.prompt_tokens` / `completion_tokens`; 3.6 and 3.7 named the
section after the plugin (`ai-proxy`, `ai-request-transformer`, ...) and spelled the counts `prompt_token` /
`completion_token`. The model is `meta.response_model` (the one that answered), else `meta.request_model`.
Kong counts the prompt whole: where the section also logs the response it got (`payload.response`, with
`log_payloads`) in OpenAI's shape and with the same counts, that response's details split them (cached,
reasoning, ...); otherwise the prompt is input and the completion output.

The entry's identity is Kong's request id (`request.id`), its time the request's start (`started_at`, in
milliseconds). A response from Kong's own cache (`cache.cache_status: Hit`) called no model: skipped as
`proxy_cache_hit` unless `bill_proxy_cache_hits`, as LiteLLM's are. An entry for a route without AI plugins, or
whose call counted nothing (a refused request), bills nothing (`no_usage`). Attribute by the entry's consumer
(`consumer.custom_id`, `consumer.username`) in `subscription_from`.
"""

from __future__ import annotations

from typing import Any

from tokenmeter.core.events import MAX_TOKENS

from .fields import NothingToBill, count_at, first_model, id_at, object_at, unix_ms_at, with_counts
from .litellm import PROXY_CACHE_HIT
from .openai_usage import gateway_counts
from .records import INVALID_COUNTS, INVALID_RECORD, NO_USAGE, Inference, RecordError

_UNNAMED = "UNSPECIFIED"  # what Kong writes for a model it was not told
_COUNT_KEYS = (("prompt_tokens", "completion_tokens"), ("prompt_token", "completion_token"))


def is_kong(data: dict[str, Any]) -> bool:
    """Kong's entry: its `latencies` (Kong's own among them) and the request and response it describes, which
    a gateway log wrapping the response itself (formats.py reads those) does not have."""
    latencies, response = data.get("latencies"), data.get("response")
    return ("started_at" in data and isinstance(latencies, dict) and "kong" in latencies
            and isinstance(data.get("request"), dict) and isinstance(response, dict)
            and "usage" not in response and "choices" not in response)


def read_kong(data: dict[str, Any], bill_cache_hits: bool) -> Inference:
    calls = [(name, section) for name, section in object_at(data, "ai").items()
             if isinstance(section, dict) and isinstance(section.get("usage"), dict)]
    if not calls:
        raise NothingToBill(NO_USAGE)  # a route without AI plugins
    if not bill_cache_hits and any(_cache_hit(section) for _, section in calls):
        raise NothingToBill(PROXY_CACHE_HIT)
    models = {_model(name, section) for name, section in calls}
    if len(models) > 1:
        raise RecordError(INVALID_RECORD, f"one Kong request called several models ({', '.join(sorted(models))}): "
                                          "each needs a record of its own")
    counts: dict[str, int] = {}
    for name, section in calls:
        for kind, tokens in _call_counts(name, section).items():
            counts[kind] = counts.get(kind, 0) + tokens
    if any(tokens > MAX_TOKENS for tokens in counts.values()):
        raise RecordError(INVALID_COUNTS, "the AI calls of one Kong request pass 10^9 tokens of a type")
    return with_counts(models.pop(), id_at(object_at(data, "request"), "id"), unix_ms_at(data, "started_at"), counts)


def _cache_hit(section: dict[str, Any]) -> bool:
    cache = section.get("cache")
    return isinstance(cache, dict) and cache.get("cache_status") == "Hit"


def _model(name: str, section: dict[str, Any]) -> str:
    return first_model(object_at(section, "meta"), ("response_model", "request_model"), f"ai.{name}.meta", _UNNAMED)


def _call_counts(name: str, section: dict[str, Any]) -> dict[str, int]:
    usage = section["usage"]
    prompt_key, completion_key = next((keys for keys in _COUNT_KEYS if keys[0] in usage or keys[1] in usage),
                                      _COUNT_KEYS[0])
    prompt = count_at(usage, prompt_key, f"ai.{name}.usage.{prompt_key}")
    completion = count_at(usage, completion_key, f"ai.{name}.usage.{completion_key}")
    payload = section.get("payload")
    return gateway_counts(prompt, completion, payload.get("response") if isinstance(payload, dict) else None)
