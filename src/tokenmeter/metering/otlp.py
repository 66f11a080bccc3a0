"""OpenTelemetry GenAI spans from OTLP JSON (what the Collector's S3 exporter writes with `otlp_json`), and spans
one per log event as CloudWatch keeps them in `aws/spans` (read as a document of that one span).

One span is one inference when it carries usage in `gen_ai.usage.*` (or the older `llm.usage.*`, or
OpenInference's `llm.token_count.*`, which Arize Phoenix's instrumentations write) and is an inference, not a
sum. Agent and workflow spans that add up their children's usage would bill it twice, so a span is billed only if
- its operation (`gen_ai.operation.name`, or OpenLLMetry's `traceloop.span.kind`) is not an agent, workflow,
  task or tool operation, and its OpenInference kind (`openinference.span.kind`), if it has one, is LLM or
  EMBEDDING, and
- no span below it in the same document carries usage too (a wrapper around model calls).
Its identity is the provider's response id (`gen_ai.response.id`) where the span has one, else (traceId,
spanId); its time is its end. The semantic conventions count cache reads and writes
inside input_tokens and reasoning inside output_tokens; some instrumentations report them beside instead,
which shows when a part exceeds its whole: it is then billed beside, as reported (and always for Strands Agents,
which reports Bedrock's counts). A model named by a Bedrock profile's id or ARN bills as the model. Claude Code's
`claude_code.llm_request` spans carry their counts under names of their own (cli_events.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tokenmeter.core.events import MAX_TOKENS, decode_json

from .ai_sdk import CACHE_APART, cache_reads, cache_writes, openai_inside
from .bedrock_runtime import PROFILE_PREFIXES, bedrock_model
from .fields import short, with_counts
from .records import INVALID_COUNTS, INVALID_RECORD, INVALID_TIMESTAMP, NO_USAGE, Inference, RecordError

NOT_GENAI = "not_genai_span"
AGGREGATE_SPAN = "aggregate_span"
NO_SPANS = "no_spans"
DUPLICATE_SPAN = "duplicate_span"
NOT_TRACES = "not_traces"

_INPUT = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.usage.prompt_tokens", "llm.token_count.prompt")
_OUTPUT = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.usage.completion_tokens",
           "llm.token_count.completion")
# The Vercel AI SDK's step spans (its telemetry before @ai-sdk/otel's GenAI names) give the cache reads and writes
# and the reasoning only as ai.usage.*; its run spans carry no gen_ai.usage, so they never bill. Release 6 counts
# them inside gen_ai.usage.input_tokens / output_tokens for every provider; releases 4 and 5 count as the provider
# does (_ai_sdk_metadata).
_CACHE_READ = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
               "llm.token_count.prompt_details.cache_read", "ai.usage.inputTokenDetails.cacheReadTokens",
               "ai.usage.cachedInputTokens")
_CACHE_WRITE = ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens",
                "llm.token_count.prompt_details.cache_write", "gen_ai.usage.cache_write_input_tokens",
                "ai.usage.inputTokenDetails.cacheWriteTokens")
_REASONING = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens",
              "llm.token_count.completion_details.reasoning", "ai.usage.outputTokenDetails.reasoningTokens",
              "ai.usage.reasoningTokens")
_AI_SDK_DETAILS = ("ai.usage.inputTokenDetails.noCacheTokens", "ai.usage.inputTokenDetails.cacheReadTokens",
                   "ai.usage.inputTokenDetails.cacheWriteTokens")  # release 6's
# Claude Code's tracing (beta): a request to the model is a `claude_code.llm_request` span, its counts under Claude
# Code's own names, as Anthropic counts them (the input without the cache reads and writes beside it).
CLAUDE_CODE_REQUEST = "claude_code.llm_request"
_CLAUDE_CODE_COUNTS = (("input", "input_tokens"), ("cached_input", "cache_read_tokens"),
                       ("cache_write", "cache_creation_tokens"), ("output", "output_tokens"))
_BEDROCK_NAMES = ("arn:aws:bedrock:", "arn:aws-us-gov:bedrock:", *PROFILE_PREFIXES)
_MODEL = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name", "embedding.model_name")
_USAGE = _INPUT + _OUTPUT
_USAGE_KEYS = frozenset(_USAGE)
# Keys that billing reads (usage, operation, model): a resource with none of them leaves billing to the span's own.
_GENAI_PREFIXES = ("gen_ai.", "llm.", "traceloop.")
_AGGREGATES = {"invoke_agent", "create_agent", "execute_tool", "invoke_workflow", "workflow", "agent", "task", "tool"}
_INFERENCE_KINDS = {"LLM", "EMBEDDING"}  # OpenInference's kinds of span that are a model call
_MAX_DEPTH = 32
_MAX_DIGITS = 4_000  # under the 4,300 digits Python's int() takes from text


# The keys an OTLP export holds its items under, by signal.
_SPANS = ("resourceSpans", "scopeSpans", "spans")
LOGS = ("resourceLogs", "scopeLogs", "logRecords")


@dataclass(slots=True)
class Span:
    """One span, its attributes read into Python values."""

    trace_id: str
    span_id: str
    parent_id: str
    # What billing reads: the resource's attributes beneath the span's own, or only the span's own where no key
    # of the resource is a GenAI one (the usual case: merging them for every span, most of which bill nothing,
    # was a tenth of the time a document took).
    attributes: dict[str, Any]
    resource: dict[str, Any]
    own: dict[str, Any]
    name: str
    body: Any  # the span as logged
    logged_in: tuple[Any, Any] = (None, None)  # the resource and scope it was logged under, as logged

    def end_ms(self) -> int | None:
        """When the span ended (where it has no end, began) in Unix milliseconds; None where it has neither. Read
        for a span that bills, and only then: most spans of a trace bill nothing, and the time took a sixth of
        reading one."""
        end = _nanos(self.body, "endTimeUnixNano") or _nanos(self.body, "startTimeUnixNano")
        return end // 1_000_000 if end else None

    def alone(self) -> dict[str, Any]:
        """The span as an export of its own, under its resource and scope: what its dead letter holds, so that a
        replay reads it as its export was read (same identity, same attribution)."""
        return alone_in_export(*self.logged_in, self.body)

    def view(self) -> dict[str, Any]:
        """What attribution paths read: attributes.<key> (the resource's beneath the span's own), resource.<key>,
        span.<key>, name, traceId, spanId."""
        merged = {**self.resource, **self.own} if self.resource and self.attributes is self.own else self.attributes
        return {"attributes": merged, "resource": self.resource, "span": self.own, "name": self.name,
                "traceId": self.trace_id, "spanId": self.span_id}


def is_otlp(data: dict[str, Any]) -> bool:
    return isinstance(data.get("resourceSpans"), list)


def span_document(data: dict[str, Any]) -> dict[str, Any] | None:
    """A span as CloudWatch holds it in the `aws/spans` log group (Transaction Search; Bedrock AgentCore's
    observability), one per log event, its attributes and its resource's as plain maps, its times as numbers: the
    OTLP document of that one span, so that it bills as the same span exported elsewhere does (same identity). None
    for any other record."""
    if not (type(data.get("traceId")) is str and type(data.get("spanId")) is str and type(data.get("attributes")) is dict):
        return None
    resource = data.get("resource")
    span = {key: value for key, value in data.items() if key not in ("resource", "scope")}
    return {"resourceSpans": [{"resource": resource if type(resource) is dict else {},
                               "scopeSpans": [{"scope": data.get("scope"), "spans": [span]}]}]}


def is_otlp_logs_or_metrics(data: dict[str, Any]) -> bool:
    """An OTLP logs or metrics export. The Collector's S3 exporter writes every signal it is given beside the
    traces, under the same prefix; usage is billed from spans, and the same inference's log events and token
    histograms would bill it again, so these bill nothing."""
    return len(data) == 1 and (isinstance(data.get("resourceLogs"), list) or isinstance(data.get("resourceMetrics"), list))


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
            yield {"resourceSpans": [resource_spans]}, error
            continue
        billing_reads = resource_attributes if any(key.startswith(_GENAI_PREFIXES) for key in resource_attributes) else {}
        for scope in resource_spans.get("scopeSpans") or resource_spans.get("instrumentationLibrarySpans") or []:
            spans = scope.get("spans") if isinstance(scope, dict) else None
            logged_in = (resource, scope.get("scope") or scope.get("instrumentationLibrary")) if spans else None
            for span in spans if isinstance(spans, list) else []:
                try:
                    found = _span(span, resource_attributes, billing_reads)
                    found.logged_in = logged_in
                    yield found
                except RecordError as error:
                    yield alone_in_export(*logged_in, span), error


def skip_reasons(spans: list[Span]) -> list[str | None]:
    """For each span, why it bills nothing (a skip reason), or None when read_span may bill it.

    A span carrying usage bills only if no span below it in the document carries usage too and its operation is
    not an aggregate one. Spans are known by (traceId, spanId): a span id is unique only within its trace, and one
    export can hold many traces; the same span twice in one export bills once. Most spans of a trace are HTTP
    calls, tools and agents: told here without the cost of an exception each."""
    carrying = [_has_usage(span.attributes) or (span.name == CLAUDE_CODE_REQUEST and _claude_code_usage(span.attributes))
                for span in spans]
    ids = {(span.trace_id, span.span_id): span for span in spans}
    wrappers: set[tuple[str, str]] = set()
    for span, carries in zip(spans, carrying):
        if carries:
            trace, parent = span.trace_id, span.parent_id
            # A parent already marked had its ancestors marked with it: each span is walked once (a cycle too).
            while parent and (trace, parent) not in wrappers:
                wrappers.add((trace, parent))
                above = ids.get((trace, parent))
                parent = above.parent_id if above is not None else ""
    seen: set[tuple[str, str]] | None = set() if len(ids) < len(spans) else None  # (None: no span twice)
    reasons: list[str | None] = []
    for span, carries in zip(spans, carrying):
        key = (span.trace_id, span.span_id)
        if seen is not None:
            if key in seen:
                reasons.append(DUPLICATE_SPAN)
                continue
            seen.add(key)
        reasons.append(_usage_reason(span.attributes, key not in wrappers) if carries else _no_usage_reason(span))
    return reasons


def _no_usage_reason(span: Span) -> str:
    for key in span.attributes:  # (a loop rather than any(): a generator each costs more than the work here)
        if key.startswith(("gen_ai.", "llm.")):
            return NO_USAGE
    return NOT_GENAI


def _usage_reason(attributes: dict[str, Any], leaf: bool) -> str | None:
    operation = attributes.get("gen_ai.operation.name") or attributes.get("traceloop.span.kind")
    if not leaf or (isinstance(operation, str) and operation.lower() in _AGGREGATES):
        return AGGREGATE_SPAN
    kind = attributes.get("openinference.span.kind")
    if isinstance(kind, str) and kind.upper() not in _INFERENCE_KINDS:
        return AGGREGATE_SPAN  # a CHAIN, AGENT or TOOL span that sums its calls
    return None


def read_span(span: Span) -> Inference:
    """The inference of a span that bills: one ``skip_reasons`` found no reason against."""
    end_ms = span.end_ms()
    attributes = span.attributes
    for key in _MODEL:  # (a loop rather than next() over a generator: once per span that bills)
        if model := attributes.get(key):
            break
    else:
        model = None
    if not isinstance(model, str) or not model.strip():
        raise RecordError(INVALID_RECORD, f"one of {', '.join(_MODEL)} must name the model, got {short(model)}")
    model = model_name(model)
    if span.name == CLAUDE_CODE_REQUEST and not _has_usage(attributes):
        return with_counts(model, response_id(attributes, "gen_ai.response.id", "request_id") or
                           f"{span.trace_id}/{span.span_id}", end_ms, claude_code_counts(attributes))
    inputs, outputs = _tokens(attributes, _INPUT), _tokens(attributes, _OUTPUT)
    cache_read, cache_write = _tokens(attributes, _CACHE_READ), _tokens(attributes, _CACHE_WRITE)
    reasoning = _tokens(attributes, _REASONING)
    apart = _caches_apart(attributes)
    if "ai.model.provider" in attributes and (metadata := _ai_sdk_metadata(attributes)) is not None:
        if any(isinstance(metadata.get(name), dict) for name in CACHE_APART):
            (cache_read, cache_write), apart = _ai_sdk_caches(attributes, metadata), True
        elif not cache_read and not reasoning:  # release 4's OpenAI steps name them in the metadata alone
            cache_read, reasoning = openai_inside(metadata)
    if cache_read + cache_write <= inputs and not apart:
        inputs -= cache_read + cache_write
    if reasoning <= outputs:
        outputs -= reasoning
    counts = {"input": inputs, "cached_input": cache_read, "cache_write": cache_write, "output": outputs,
              "reasoning": reasoning}
    # The provider's response id, where the instrumentation recorded it: the same call logged elsewhere (the
    # app's log of the response, a gateway's) bills once with it.
    identity = response_id(attributes, "gen_ai.response.id") or f"{span.trace_id}/{span.span_id}"
    return with_counts(model, identity, end_ms, counts)


def model_name(model: str) -> str:
    """A model as its provider bills it: a Bedrock profile's id or ARN names the model, as its invocation log does."""
    return bedrock_model(model) if model.startswith(_BEDROCK_NAMES) else model


def claude_code_counts(attributes: dict[str, Any]) -> dict[str, int]:
    """A Claude Code request's input, cache reads, cache writes and output, each apart from the others."""
    return {kind: tokens_at(attributes, name) for kind, name in _CLAUDE_CODE_COUNTS}


def tokens_at(attributes: dict[str, Any], name: str) -> int:
    """A token count attribute (a whole number, or its digits as text); 0 where it is absent."""
    return _tokens(attributes, (name,))


def _claude_code_usage(attributes: dict[str, Any]) -> bool:
    return attributes.get("input_tokens") is not None or attributes.get("output_tokens") is not None


def response_id(attributes: dict[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` that holds an id (text, not empty, no edge whitespace)."""
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, str) and value and value == value.strip():
            return value
    return None


def _caches_apart(attributes: dict[str, Any]) -> bool:
    """Strands Agents writes its models' usage as Bedrock reports it, cache reads and writes beside the input
    (its OpenAI-compatible models report none), under names of its own (`cache_write_input_tokens`)."""
    return (attributes.get("gen_ai.system") == "strands-agents" or attributes.get("gen_ai.provider.name") == "strands-agents"
            or "gen_ai.usage.cache_write_input_tokens" in attributes)


def _ai_sdk_metadata(attributes: dict[str, Any]) -> dict[str, Any] | None:
    """The response's providerMetadata (JSON text) of a step span of the Vercel AI SDK's releases 4 and 5, where
    what the counts hold depends on the provider (ai_sdk.py); None for release 6's spans and any other."""
    if any(key in attributes for key in _AI_SDK_DETAILS):
        return None
    text = attributes.get("ai.response.providerMetadata")
    try:
        metadata = decode_json(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return metadata if isinstance(metadata, dict) else None


def _ai_sdk_caches(attributes: dict[str, Any], metadata: dict[str, Any]) -> tuple[int, int]:
    """(cache reads, cache writes) beside the input, for a step from Anthropic or Bedrock, whose input count leaves
    both out: the reads as ai.usage.cachedInputTokens (release 5's streamed steps) or in the metadata, as the
    writes are."""
    reads = (_tokens(attributes, ("ai.usage.cachedInputTokens",)) if "ai.usage.cachedInputTokens" in attributes
             else cache_reads(metadata))
    return reads, cache_writes(metadata)


def _has_usage(attributes: dict[str, Any]) -> bool:
    if _USAGE_KEYS.isdisjoint(attributes):  # (most spans: their few keys looked up in C, not eight gets each)
        return False
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


def _span(span: Any, resource: dict[str, Any], billing_reads: dict[str, Any]) -> Span:
    if not isinstance(span, dict):
        raise RecordError(INVALID_RECORD, f"a span must be an object, got {short(span)}")
    trace_id, span_id = span.get("traceId"), span.get("spanId")
    if not (isinstance(trace_id, str) and trace_id and isinstance(span_id, str) and span_id):
        raise RecordError(INVALID_RECORD, "a span needs a traceId and a spanId")
    parent = span.get("parentSpanId")
    own = attributes_of(span.get("attributes"))
    name = span.get("name")
    return Span(trace_id, span_id, parent if type(parent) is str else "", {**billing_reads, **own} if billing_reads else own,
                resource, own, name if type(name) is str else "", span)


def alone_in_export(resource: Any, scope: Any, item: Any, signal: tuple[str, str, str] = _SPANS) -> dict[str, Any]:
    """An OTLP export holding ``item`` alone (a span, or a log record with LOGS), under ``resource`` and ``scope``
    as they were logged."""
    outer, middle, inner = signal
    held: dict[str, Any] = {inner: [item]}
    if scope is not None:
        held["scope"] = scope
    return {outer: [{"resource": resource if isinstance(resource, dict) else {}, middle: [held]}]}


def nanos_at(holder: dict[str, Any], key: str) -> int | None:
    """Unix nanoseconds at ``key``, in milliseconds; None where absent or 0 (OTLP's "unknown")."""
    nanos = _nanos(holder, key)
    return nanos // 1_000_000 if nanos else None


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
    """OTLP's [{key, value: AnyValue}] as a dict of Python values (a plain map is taken as it is)."""
    if attributes is None:
        return {}
    if type(attributes) is dict:  # the plain map aws/spans holds (span_document)
        return {key: value for key, value in attributes.items() if type(key) is str}
    if not isinstance(attributes, list):
        raise RecordError(INVALID_RECORD, f"attributes must be a list, got {short(attributes)}")
    found = {}
    for attribute in attributes:
        try:  # (subscripts, not get(): a span has ten attributes or so, all read, and calls cost here)
            key = attribute["key"]  # (anything but an object raises: JSON has no other mapping)
        except (KeyError, TypeError):
            key = None
        if type(key) is not str:
            raise RecordError(INVALID_RECORD, f"an attribute must be an object with a string key, got {short(attribute)}")
        value = attribute.get("value")
        if type(value) is dict:  # _any_value's two usual cases inline
            if "stringValue" in value:
                text = value["stringValue"]
                found[key] = text if type(text) is str else None
                continue
            raw = value.get("intValue")
            if type(raw) is str and raw.isdigit() and raw.isascii() and len(raw) <= _MAX_DIGITS:
                found[key] = int(raw)
                continue
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
