"""Claude Code's OpenTelemetry events: the OTLP logs export its monitoring set-up turns on
(`CLAUDE_CODE_ENABLE_TELEMETRY=1`, `OTEL_LOGS_EXPORTER=otlp`), as a Collector's S3 exporter writes it.

Each `claude_code.api_request` log record is one request to the model: `model`, and counts as Anthropic counts them
(`input_tokens` without the cache, `cache_read_tokens`, `cache_creation_tokens`, `output_tokens`), whole numbers or
their digits as text, as Claude Code's releases have written them. Its identity is the API's `request_id`, which
the same request's `claude_code.llm_request` span (otlp.py) names too, so a request exported both ways bills once;
its time the record's. Every other record of a logs export (prompts, tool results, API errors, and any other
program's logs beside) bills nothing: `not_traces`, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .fields import model_at, rfc3339_at, with_counts
from .otlp import attributes_of, claude_code_counts, model_name, nanos_at, response_id
from .records import Inference, RecordError

API_REQUEST = "claude_code.api_request"
_EVENT_NAMES = ("api_request", API_REQUEST)  # `event.name`: bare in newer releases, qualified in older ones
_SCOPE = "com.anthropic.claude_code"


@dataclass(slots=True)
class ApiRequest:
    """One `claude_code.api_request` record, its attributes read into Python values."""

    attributes: dict[str, Any]
    resource: dict[str, Any]
    time_ms: int | None
    body: Any  # the log record as exported, for a dead letter

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
    """For each record of a logs export: the API request it is; (the record, why it cannot be read) for one that
    says it is an API request and cannot be read; None for every other record."""
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
            names = _event_names(scope.get("scope") if isinstance(scope, dict) else None)
            for record in records if isinstance(records, list) else []:
                yield _api_request(record, resource_attributes) if _is_api_request(record, names) else None


def read_api_request(event: ApiRequest) -> Inference:
    # (Older releases name no request id: the record's place in its export identifies it.)
    return with_counts(model_name(model_at(event.attributes, "model")), response_id(event.attributes, "request_id"),
                       event.time_ms, claude_code_counts(event.attributes))


def _event_names(scope: Any) -> tuple[str, ...]:
    """The `event.name` values that make a record of this scope an API request: the bare name only in Claude
    Code's own scope (another program may call an event of its own `api_request`)."""
    name = scope.get("name") if isinstance(scope, dict) else None
    return _EVENT_NAMES if isinstance(name, str) and name.startswith(_SCOPE) else (API_REQUEST,)


def _is_api_request(record: Any, names: tuple[str, ...]) -> bool:
    if not isinstance(record, dict):
        return False
    body = record.get("body")
    if isinstance(body, dict) and body.get("stringValue") == API_REQUEST:
        return True
    attributes = record.get("attributes")
    if isinstance(attributes, list):  # an exporter that leaves the body out: the event's name attribute says it
        return any(isinstance(item, dict) and item.get("key") == "event.name" and isinstance(item.get("value"), dict)
                   and item["value"].get("stringValue") in names for item in attributes)
    return False


def _api_request(record: dict[str, Any], resource: dict[str, Any] | RecordError) -> ApiRequest | tuple[Any, RecordError]:
    if isinstance(resource, RecordError):
        return record, resource
    try:
        attributes = attributes_of(record.get("attributes"))
        # The record's time; else its event.timestamp (ISO 8601), else when the SDK saw it.
        time_ms = (nanos_at(record, "timeUnixNano") or rfc3339_at(attributes, "event.timestamp")
                   or nanos_at(record, "observedTimeUnixNano"))
    except RecordError as error:
        return record, error
    return ApiRequest(attributes, resource, time_ms, record)
