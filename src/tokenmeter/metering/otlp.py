"""OpenTelemetry GenAI spans from OTLP JSON (what the Collector's S3 exporter writes with `otlp_json`).

One span is one inference when it carries usage in `gen_ai.usage.*` (or the older `llm.usage.*`) and is an
inference, not a sum. Agent and workflow spans that add up their children's usage would bill it twice, so a
span is billed only if
- its operation (`gen_ai.operation.name`, or OpenLLMetry's `traceloop.span.kind`) is not an agent, workflow,
  task or tool operation, and
- no span below it in the same document carries usage too (a wrapper around model calls).
Its identity is (traceId, spanId); its time is its end. The semantic conventions count cache reads and writes
inside input_tokens and reasoning inside output_tokens; some instrumentations report them beside instead,
which shows when a part exceeds its whole: it is then billed beside, as reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tokenmeter.core.events import MAX_TOKENS

from .fields import short, with_counts
from .records import INVALID_COUNTS, INVALID_RECORD, INVALID_TIMESTAMP, NO_USAGE, Inference, RecordError

NOT_GENAI = "not_genai_span"
AGGREGATE_SPAN = "aggregate_span"
NO_SPANS = "no_spans"
DUPLICATE_SPAN = "duplicate_span"

_INPUT = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.usage.prompt_tokens")
_OUTPUT = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.usage.completion_tokens")
_CACHE_READ = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens")
_CACHE_WRITE = ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens")
_REASONING = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens")
_USAGE = _INPUT + _OUTPUT
_AGGREGATES = {"invoke_agent", "create_agent", "execute_tool", "invoke_workflow", "workflow", "agent", "task", "tool"}
_MAX_DEPTH = 32
_MAX_DIGITS = 4_000  # under the 4,300 digits Python's int() takes from text


@dataclass(slots=True)
class Span:
    """One span, its attributes read into Python values (the resource's beneath the span's own)."""

    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    own: dict[str, Any]
    end_ms: int | None
    name: str
    body: Any  # the span as logged, for a dead letter

    def view(self) -> dict[str, Any]:
        """What attribution paths read: attributes.<key>, resource.<key>, span.<key>, name, traceId, spanId."""
        return {"attributes": self.attributes, "resource": self.resource, "span": self.own, "name": self.name,
                "traceId": self.trace_id, "spanId": self.span_id}


def is_otlp(data: dict[str, Any]) -> bool:
    return isinstance(data.get("resourceSpans"), list)


def otlp_spans(document: dict[str, Any]) -> Iterator[Span | tuple[Any, RecordError]]:
    """Every span of the document, or (the span as logged, why it cannot be read)."""
    for r, resource_spans in enumerate(document["resourceSpans"]):
        if not isinstance(resource_spans, dict):
            yield resource_spans, RecordError(INVALID_RECORD, f"resourceSpans[{r}] must be an object")
            continue
        resource = resource_spans.get("resource") or {}
        try:
            resource_attributes = attributes_of(resource.get("attributes") if isinstance(resource, dict) else None)
        except RecordError as error:
            yield resource_spans, error
            continue
        for scope in resource_spans.get("scopeSpans") or resource_spans.get("instrumentationLibrarySpans") or []:
            spans = scope.get("spans") if isinstance(scope, dict) else None
            for span in spans if isinstance(spans, list) else []:
                try:
                    yield _span(span, resource_attributes)
                except RecordError as error:
                    yield span, error


def billable_spans(spans: list[Span]) -> set[int]:
    """Positions of the spans that carry usage and have no descendant carrying usage in the document.

    Spans are known by (traceId, spanId): a span id is unique only within its trace, and one export can hold
    many traces."""
    carrying = [i for i, span in enumerate(spans) if _has_usage(span.attributes)]
    ids = {(span.trace_id, span.span_id): span for span in spans}
    wrappers: set[tuple[str, str]] = set()
    for i in carrying:
        trace, parent = spans[i].trace_id, spans[i].parent_id
        # A parent already marked had its ancestors marked with it: each span is walked once (a cycle too).
        while parent and (trace, parent) not in wrappers:
            wrappers.add((trace, parent))
            above = ids.get((trace, parent))
            parent = above.parent_id if above is not None else ""
    return {i for i in carrying if (spans[i].trace_id, spans[i].span_id) not in wrappers}


def nothing_to_bill(span: Span, leaf: bool) -> str | None:
    """Why the span bills nothing (a skip reason), or None when read_span may bill it. Most spans of a trace
    are HTTP calls, tools and agents: told here without the cost of an exception each."""
    attributes = span.attributes
    for key in attributes:  # (loops rather than any(): a generator each costs more than the work here)
        if key.startswith(("gen_ai.", "llm.")):
            break
    else:
        return NOT_GENAI
    if not _has_usage(attributes):
        return NO_USAGE
    operation = attributes.get("gen_ai.operation.name") or attributes.get("traceloop.span.kind")
    if not leaf or (isinstance(operation, str) and operation.lower() in _AGGREGATES):
        return AGGREGATE_SPAN
    return None


def read_span(span: Span) -> Inference:
    """The inference of a span that bills: one ``nothing_to_bill`` found no reason against."""
    attributes = span.attributes
    model = attributes.get("gen_ai.response.model") or attributes.get("gen_ai.request.model")
    if not isinstance(model, str) or not model.strip():
        raise RecordError(INVALID_RECORD, f"gen_ai.response.model or gen_ai.request.model must name the model, "
                                          f"got {short(model)}")
    inputs, outputs = _tokens(attributes, _INPUT), _tokens(attributes, _OUTPUT)
    cache_read, cache_write = _tokens(attributes, _CACHE_READ), _tokens(attributes, _CACHE_WRITE)
    reasoning = _tokens(attributes, _REASONING)
    if cache_read + cache_write <= inputs:
        inputs -= cache_read + cache_write
    if reasoning <= outputs:
        outputs -= reasoning
    counts = {"input": inputs, "cached_input": cache_read, "cache_write": cache_write, "output": outputs,
              "reasoning": reasoning}
    return with_counts(model, f"{span.trace_id}/{span.span_id}", span.end_ms, counts)


def _has_usage(attributes: dict[str, Any]) -> bool:
    for key in _USAGE:  # noqa: SIM110 - any() with a generator costs more than the lookups, once per span
        if attributes.get(key) is not None:
            return True
    return False


def _tokens(attributes: dict[str, Any], names: tuple[str, ...]) -> int:
    for name in names:
        value = attributes.get(name)
        if value is None:
            continue
        if (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS
                or isinstance(value, float) and value.is_integer()):
            value = int(value)
        if type(value) is not int or not 0 <= value <= MAX_TOKENS:
            raise RecordError(INVALID_COUNTS, f"{name} must be a whole number from 0 to 10^9, got {short(value)}")
        return value
    return 0


def _span(span: Any, resource: dict[str, Any]) -> Span:
    if not isinstance(span, dict):
        raise RecordError(INVALID_RECORD, f"a span must be an object, got {short(span)}")
    trace_id, span_id = span.get("traceId"), span.get("spanId")
    if not (isinstance(trace_id, str) and trace_id and isinstance(span_id, str) and span_id):
        raise RecordError(INVALID_RECORD, "a span needs a traceId and a spanId")
    parent = span.get("parentSpanId")
    own = attributes_of(span.get("attributes"))
    end = _nanos(span, "endTimeUnixNano") or _nanos(span, "startTimeUnixNano")
    name = span.get("name")
    return Span(trace_id, span_id, parent if isinstance(parent, str) else "", {**resource, **own}, resource, own,
                end // 1_000_000 if end else None, name if isinstance(name, str) else "", span)


def _nanos(span: dict[str, Any], key: str) -> int | None:
    value = span.get(key)
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:  # (longer: past 10^20)
        value = int(value)
    if type(value) is not int or not 0 <= value < 10**20:
        raise RecordError(INVALID_TIMESTAMP, f"{key} must be Unix nanoseconds, got {short(value)}")
    return value


def attributes_of(attributes: Any) -> dict[str, Any]:
    """OTLP's [{key, value: AnyValue}] as a dict of Python values."""
    if attributes is None:
        return {}
    if not isinstance(attributes, list):
        raise RecordError(INVALID_RECORD, f"attributes must be a list, got {short(attributes)}")
    found = {}
    for attribute in attributes:
        if not isinstance(attribute, dict) or not isinstance(key := attribute.get("key"), str):
            raise RecordError(INVALID_RECORD, f"an attribute must be an object with a string key, got {short(attribute)}")
        value = attribute.get("value")
        if type(value) is dict and "stringValue" in value:  # most attributes: _any_value's first case, inline
            text = value["stringValue"]
            found[key] = text if isinstance(text, str) else None
        else:
            found[key] = _any_value(value, 0)
    return found


def _any_value(value: Any, depth: int) -> Any:
    if not isinstance(value, dict) or not value or depth > _MAX_DEPTH:
        return None  # empty (or nested past reason): no value
    if "stringValue" in value:
        return value["stringValue"] if isinstance(value["stringValue"], str) else None
    if "intValue" in value:
        raw = value["intValue"]  # a string in OTLP JSON (int64), a number from some writers
        if isinstance(raw, str):
            digits = raw[1:] if raw[:1] == "-" else raw
            if not (digits.isascii() and digits.isdigit()):
                return None  # ("--5" once raised from int(), and took every span of the document with it)
            # Past Python's limit for int() a number stays text, which a token count refuses (invalid_counts).
            return int(raw) if len(digits) <= _MAX_DIGITS else raw
        return raw if type(raw) is int else None
    if "doubleValue" in value:
        raw = value["doubleValue"]
        return float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else None
    if "boolValue" in value:
        return value["boolValue"] if isinstance(value["boolValue"], bool) else None
    if "arrayValue" in value:
        items = (value["arrayValue"] or {}).get("values") if isinstance(value["arrayValue"], dict) else None
        return [_any_value(item, depth + 1) for item in items] if isinstance(items, list) else None
    if "kvlistValue" in value:
        items = (value["kvlistValue"] or {}).get("values") if isinstance(value["kvlistValue"], dict) else None
        if not isinstance(items, list):
            return None
        return {kv["key"]: _any_value(kv.get("value"), depth + 1) for kv in items
                if isinstance(kv, dict) and isinstance(kv.get("key"), str)}
    if "bytesValue" in value:
        return value["bytesValue"] if isinstance(value["bytesValue"], str) else None
    return None
