"""Apache APISIX's log entries (http-logger, kafka-logger, file-logger, ...) for requests its `ai-proxy` and
`ai-proxy-multi` plugins served, with `logging.summaries` on: the plugin adds `llm_summary` to the entry.

`llm_summary.prompt_tokens` and `completion_tokens` are the usage the provider answered with; `model` the model
APISIX sent the request to (the instance's configured model, else the request's), `request_model` the one the
client asked for. Where the entry also logs the response body (`include_resp_body`) in OpenAI's shape with the
same counts, its details split them (cached, reasoning, ...). Time: the entry's `start_time` (milliseconds; a
custom `log_format` without it leaves the log event's). Identity: the `X-Request-Id` the request-id plugin sets,
where the entry logs the request's headers; else the log line's own. Attribute by `consumer.username`.
"""

from __future__ import annotations

from typing import Any

from .fields import count_at, first_model, object_at, unix_ms_at, with_counts
from .openai_usage import gateway_counts
from .records import Inference


def is_apisix(data: dict[str, Any]) -> bool:
    return isinstance(data.get("llm_summary"), dict)


def read_apisix(data: dict[str, Any]) -> Inference:
    summary = data["llm_summary"]
    model = first_model(summary, ("model", "request_model"), "llm_summary")
    prompt = count_at(summary, "prompt_tokens", "llm_summary.prompt_tokens")
    completion = count_at(summary, "completion_tokens", "llm_summary.completion_tokens")
    counts = gateway_counts(prompt, completion, object_at(data, "response").get("body"))
    request_id = object_at(object_at(data, "request"), "headers").get("x-request-id")
    request_id = request_id if isinstance(request_id, str) and request_id else None  # (a repeated header is a list)
    return with_counts(model, request_id, unix_ms_at(data, "start_time"), counts)
