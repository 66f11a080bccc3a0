"""The OpenTelemetry events three coding agents export of their requests to the model: their OTLP logs export, as a
Collector's S3 exporter writes it.

- Claude Code (`CLAUDE_CODE_ENABLE_TELEMETRY=1`, `OTEL_LOGS_EXPORTER=otlp`): each `claude_code.api_request` record
  is one request, `model`, and counts as Anthropic counts them (`input_tokens` without the cache,
  `cache_read_tokens`, `cache_creation_tokens`, `output_tokens`). Its identity is the API's `request_id`, which the
  same request's `claude_code.llm_request` span (otlp.py) names too, so a request exported both ways bills under
  the same ids.
- Gemini CLI (`telemetry.enabled`, target `local` or `gcp` through a Collector): each `gemini_cli.api_response`
  record is one answer, its counts the response's usageMetadata renamed (`input_token_count` the prompt, its
  cached part `cached_content_token_count`, `tool_token_count`, `output_token_count`, `thoughts_token_count`),
  read as a Gemini response is (gemini.py); it names no response id. (Its `gen_ai.client.inference.operation
  .details` restatement of the same answer bills nothing.)
- Codex CLI (`[otel]` in config.toml with an OTLP exporter): of its `codex.sse_event` records, one per server-sent
  event of a response, the one of kind `response.completed` carries the Responses API's usage under names of its
  own (`input_token_count` with its cached part `cached_token_count` and, in later releases, the part written to
  the cache `cache_write_token_count`; `output_token_count` with its reasoning part `reasoning_token_count`; its
  `tool_token_count` is the total) and the session's `model`; it names no response id.

Counts are whole numbers or their digits as text, as the releases have written them; the time is the record's.
Every other record of a logs export (prompts, tool results, API errors, and any other program's logs beside)
bills nothing: `not_traces`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .fields import carve, model_at, rfc3339_at, with_counts
from .gemini import read_gemini
from .otlp import LOGS, alone_in_export, attributes_of, claude_code_counts, model_name, nanos_at, response_id, tokens_at
from .records import Inference, RecordError

API_REQUEST = "claude_code.api_request"
GEMINI_RESPONSE = "gemini_cli.api_response"
CODEX_EVENT = "codex.sse_event"
_CODEX_COMPLETED = "response.completed"  # its `event.kind` that carries the usage
_CLAUDE_NAMES = ("api_request", API_REQUEST)  # `event.name`: bare in newer releases, qualified in older ones
_CLAUDE_SCOPE = "com.anthropic.claude_code"
# Gemini CLI's names for the usageMetadata fields it copies.
_GEMINI_COUNTS = (("promptTokenCount", "input_token_count"), ("cachedContentTokenCount", "cached_content_token_count"),
                  ("toolUsePromptTokenCount", "tool_token_count"), ("candidatesTokenCount", "output_token_count"),
                  ("thoughtsTokenCount", "thoughts_token_count"))


@dataclass(slots=True)
class ApiRequest:
    """One request's record (`kind`: its event's name), its attributes read into Python values."""

    kind: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    time_ms: int | None
    body: Any  # the record alone in an export, under its resource and scope: its dead letter (a replay reads it)

    def view(self) -> dict[str, Any]:
        """What attribution paths read, as for a span: attributes.<key> (the resource's beneath the event's own:
        `attributes.user.email`, `attributes.organization.id`, or a team the OTEL_RESOURCE_ATTRIBUTES name),
        resource.<key>, event.<key>."""
        return {"attributes": {**self.resource, **self.attributes}, "resource": self.resource,
                "event": self.attributes}


def is_otlp_logs(data: dict[str, Any]) -> bool:
    """An OTLP logs export, and nothing more (otlp.is_otlp_logs_or_metrics)."""
    return len(data) == 1 and isinstance(data.get("resourceLogs"), list)


def api_requests(document: dict[str, Any]) -> Iterator[ApiRequest | tuple[Any, RecordError] | None]:
    """For each record of a logs export: the request it is; (the record, why it cannot be read) for one that says
    it is a request and cannot be read; None for every other record."""
    for resource_logs in document["resourceLogs"]:
        if not isinstance(resource_logs, dict):
            yield None
            continue
        resource = resource_logs.get("resource")
        try:
            resource_attributes: dict[str, Any] | RecordError = attributes_of(
                resource.get("attributes") if isinstance(resource, dict) else None)
        except RecordError as error:
            resource_attributes = error  # (what may attribute its requests: they cannot be billed to anyone)
        scopes = resource_logs.get("scopeLogs")
        for scope in scopes if isinstance(scopes, list) else []:
            records = scope.get("logRecords") if isinstance(scope, dict) else None
            meta = scope.get("scope") if isinstance(scope, dict) else None
            claude_names = _claude_names(meta)
            for record in records if isinstance(records, list) else []:
                kind = _kind(record, claude_names)
                yield None if kind is None else _api_request(kind, record, resource_attributes,
                                                             alone_in_export(resource, meta, record, LOGS))


def read_api_request(event: ApiRequest) -> Inference:
    attributes = event.attributes
    model = model_name(model_at(attributes, "model"))
    if event.kind == CODEX_EVENT:
        counts = {**carve("input", tokens_at(attributes, "input_token_count"),
                          {"cached_input": tokens_at(attributes, "cached_token_count"),
                           "cache_write": tokens_at(attributes, "cache_write_token_count")}),
                  **carve("output", tokens_at(attributes, "output_token_count"),
                          {"reasoning": tokens_at(attributes, "reasoning_token_count")})}
        return with_counts(model, None, event.time_ms, counts)
    if event.kind == GEMINI_RESPONSE:
        usage = {field: tokens_at(attributes, name) for field, name in _GEMINI_COUNTS}
        inference = read_gemini({"usageMetadata": usage, "modelVersion": model})
        inference.timestamp_ms = event.time_ms
        return inference
    # (Claude Code's older releases name no request id: the record's place in its export identifies it.)
    return with_counts(model, response_id(attributes, "request_id"), event.time_ms, claude_code_counts(attributes))


def _claude_names(scope: Any) -> tuple[str, ...]:
    """The `event.name` values that make a record of this scope a Claude Code request: the bare name only in Claude
    Code's own scope (another program may call an event of its own `api_request`)."""
    name = scope.get("name") if isinstance(scope, dict) else None
    return _CLAUDE_NAMES if isinstance(name, str) and name.startswith(_CLAUDE_SCOPE) else (API_REQUEST,)


def _kind(record: Any, claude_names: tuple[str, ...]) -> str | None:
    if not isinstance(record, dict):
        return None
    body = record.get("body")
    if isinstance(body, dict) and body.get("stringValue") == API_REQUEST:
        return API_REQUEST
    attributes = record.get("attributes")
    if not isinstance(attributes, list):
        return None
    name = _string_at(attributes, "event.name")
    if name == CODEX_EVENT:
        return CODEX_EVENT if _string_at(attributes, "event.kind") == _CODEX_COMPLETED else None
    return API_REQUEST if name in claude_names else GEMINI_RESPONSE if name == GEMINI_RESPONSE else None


def _string_at(attributes: list[Any], key: str) -> str | None:
    """The text of an OTLP attribute list's ``key``, before the list is read whole (most records bill nothing)."""
    for item in attributes:
        if isinstance(item, dict) and item.get("key") == key and isinstance(item.get("value"), dict):
            return item["value"].get("stringValue")
    return None


def _api_request(kind: str, record: dict[str, Any], resource: dict[str, Any] | RecordError, alone: dict[str, Any]
                 ) -> ApiRequest | tuple[Any, RecordError]:
    if isinstance(resource, RecordError):
        return alone, resource
    try:
        attributes = attributes_of(record.get("attributes"))
        # The record's time; else its event.timestamp (ISO 8601), else when the SDK saw it.
        time_ms = (nanos_at(record, "timeUnixNano") or rfc3339_at(attributes, "event.timestamp")
                   or nanos_at(record, "observedTimeUnixNano"))
    except RecordError as error:
        return alone, error
    return ApiRequest(kind, attributes, resource, time_ms, alone)
