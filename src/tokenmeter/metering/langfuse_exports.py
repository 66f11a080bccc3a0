"""Langfuse's observations, as its blob storage export writes them to S3 (`<prefix><project id>/observations_v2/
<time>.jsonl[.gz]`, the enriched source, and `observations/` of the legacy one; JSONL, JSON or Parquet, whose rows
s3_objects.py reads as JSONL holds them) and as its public API returns them (camelCase; a page of its answer,
`{"data": [...], "meta": ...}`, and a whole trace with its `observations` are read observation by observation).

An observation is a row with `id`, `trace_id`, `project_id`, `type`, `parent_observation_id`, `start_time` and
`end_time` (the export's `core` group, always written). Its `usage_details` (the `usage` group) hold the tokens
Langfuse recorded, by kind, in Langfuse's convention: the kinds are disjoint parts (Langfuse prices each kind and
adds them up), `input` and `output` being what is left of the prompt and completion once the details it lists
beside them (`input_cached_tokens`, `output_reasoning_tokens`, ...) were taken out, and `total` their sum
(langfuse: packages/shared/src/server/ingestion/types.ts and the OpenTelemetry mapping; the Python SDK's LangChain
handler). Each kind Langfuse's integrations and price table name maps to a token type here; a kind not known is
an `invalid_counts` letter naming it, never dropped or guessed. Instrumentations do send overlapping kinds (an
inclusive `input` beside cache kinds: langfuse#10592, which Langfuse only warns about): where the parts add up to
neither the `total` nor the total of every kind, the row is an `invalid_counts` letter.

Only generations and embeddings bill: an agent, chain or tool observation with usage sums its model calls
(Langfuse maps OpenTelemetry's `invoke_agent`, OpenInference's AGENT and CHAIN spans to those types):
`aggregate_span`. An observation is known by its trace and id, so one observation in two export files (a row at
the edge of a window falls in both; the mixed export source writes `observations/` and `observations_v2/`) bills
once. An OpenTelemetry span Langfuse took in keeps its attributes in the observation's metadata: where they hold the
provider's response id (`gen_ai.response.id`), that is its identity, as otlp.py reads the span, else its trace and
span, as otlp.py knows a span without one; so a span exported to S3 as well bills once. Its time is its end (else its
start).
The export's trace and score rows and its run manifest bill nothing.
"""

from __future__ import annotations

from typing import Any

from tokenmeter.core.events import MAX_TOKENS

from .fields import NothingToBill, first_model, object_at, objects_read_back, page_items, rfc3339_at, short, with_counts
from .otlp import AGGREGATE_SPAN, model_name, response_id
from .records import INVALID_COUNTS, INVALID_RECORD, NO_USAGE, NOT_FINAL, Inference, RecordError

_TYPES = frozenset({"SPAN", "GENERATION", "EVENT", "AGENT", "TOOL", "CHAIN", "RETRIEVER", "EVALUATOR", "EMBEDDING",
                    "GUARDRAIL"})
_MODEL_CALLS = frozenset({"GENERATION", "EMBEDDING"})
# Field names: the export's (ClickHouse columns) and the public API's.
_SNAKE = {"trace": "trace_id", "start": "start_time", "end": "end_time", "usage": "usage_details",
          "models": ("provided_model_name",)}
_CAMEL = {"trace": "traceId", "start": "startTime", "end": "endTime", "usage": "usageDetails",
          "models": ("providedModelName", "model")}

_KINDS: dict[str, tuple[str, ...]] = {
    "input": ("input", "input_text", "input_text_tokens"),
    "output": ("output", "output_text", "output_text_tokens",
               # OpenAI bills predicted-output tokens as completion tokens; Langfuse lists them beside the rest.
               "output_accepted_prediction_tokens", "output_rejected_prediction_tokens"),
    "cached_input": ("input_cached_tokens", "input_cache_read", "cache_read_input_tokens", "input_cached_text_tokens",
                     "input_cached_audio_tokens", "input_cached_image_tokens"),
    "cache_write": ("input_cache_creation", "input_cache_creation_5m", "input_cache_creation_1h", "input_cache_write",
                    "input_cache_write_tokens", "input_cache_creation_tokens", "cache_creation_input_tokens",
                    "cache_write_tokens", "input_ephemeral_5m_input_tokens", "input_ephemeral_1h_input_tokens"),
    "reasoning": ("output_reasoning_tokens", "output_reasoning", "reasoning_tokens"),
    "input_audio": ("input_audio_tokens", "input_audio"),
    "output_audio": ("output_audio_tokens", "output_audio"),
    "input_image": ("input_image", "input_image_tokens"),
    "output_image": ("output_image", "output_image_tokens"),
}
_TOKEN_TYPES = {kind: token_type for token_type, kinds in _KINDS.items() for kind in kinds}
# Gemini's modalities as the LangChain handler names them (the enum's name or number): text, video and documents
# stay in input and output, as gemini.py counts them.
_MODALITIES = {"TEXT": "", "1": "", "IMAGE": "_image", "2": "_image", "VIDEO": "", "3": "", "AUDIO": "_audio", "4": "_audio",
               "DOCUMENT": "", "5": ""}
for _name, _suffix in _MODALITIES.items():
    _TOKEN_TYPES[f"input_modality_{_name}"] = "input" + _suffix
    _TOKEN_TYPES[f"output_modality_{_name}"] = "output" + _suffix
    _TOKEN_TYPES[f"cached_modality_{_name}"] = "cached_input"
# Units Langfuse keeps beside tokens (Gemini's grounding, Anthropic's web searches): priced per request, not tokens.
_NOT_TOKENS = frozenset({"grounding_queries", "groundingQueries", "web_search_queries", "webSearchQueries",
                         "web_search_requests", "server_tool_use_web_search_requests"})


def is_observation(data: dict[str, Any]) -> bool:
    """A Langfuse observation: an export row or a public API object."""
    kind = data.get("type")
    if type(kind) is not str or kind not in _TYPES or type(data.get("id")) is not str:
        return False
    names = _names(data)
    return type(data.get(names["trace"])) is str and names["start"] in data


def api_page(data: dict[str, Any]) -> list[Any] | None:
    """The observations of a page of the public API's answer (`{"data": [...], "meta": {...}}`), else None."""
    return page_items(data, "data", is_observation) if type(data.get("meta")) is dict else None


def api_trace(data: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The observations of a trace as the public API returns it whole (`GET /traces/{id}`: `observations` beside
    the trace's fields), each with the trace's fields beneath its own (its `userId`, `sessionId`, `tags`), else None."""
    observations = data.get("observations")
    if type(observations) is not list or "htmlPath" not in data or not all(type(o) is dict for o in observations):
        return None
    if not any(is_observation(observation) for observation in observations):
        return None
    trace = {key: value for key, value in data.items() if key not in ("observations", "scores")}
    return [{**trace, **observation} for observation in observations]  # (one that is none: its own dead letter)


def is_export_bookkeeping(data: dict[str, Any]) -> bool:
    """The export's other rows: a trace (legacy source), a score, or a run's manifest."""
    if "project_id" in data and "timestamp" in data:
        return {"bookmarked", "public", "tags"} <= data.keys() or {"data_type", "source", "value"} <= data.keys()
    return "projectId" in data and "exportSource" in data and type(data.get("files")) is list


def read_observation(data: dict[str, Any]) -> Inference:
    names = _names(data)
    if names["usage"] not in data:
        if data["type"] in _MODEL_CALLS:
            raise RecordError(INVALID_RECORD, f"a {data['type'].lower()} without {names['usage']!r} (the export's "
                                              "usage field group)")
        raise NothingToBill(NO_USAGE)
    counts = usage_counts(object_at(data, names["usage"]), names["usage"])
    if not any(counts.values()):
        raise NothingToBill(NOT_FINAL if data.get(names["end"]) is None else NO_USAGE)
    if data["type"] not in _MODEL_CALLS:
        raise NothingToBill(AGGREGATE_SPAN)
    model = model_name(first_model(data, names["models"], f"the {data['type'].lower()}"))
    at = rfc3339_at(data, names["end"]) or rfc3339_at(data, names["start"])
    identity = _span_response_id(data.get("metadata")) or f"{data[names['trace']]}/{data['id']}"
    return with_counts(model, identity, at, {kind: n for kind, n in counts.items() if n})


def _span_response_id(metadata: Any) -> str | None:
    """The `gen_ai.response.id` of the span an observation came from, where Langfuse kept its attributes: flattened
    by path in the enriched export (the events table), as JSON text under `attributes` in the legacy export (a map of
    strings), as an object in the API (langfuse: OtelIngestionProcessor, flattenJsonToPathArrays)."""
    if type(metadata) is not dict:
        return None
    if (flat := metadata.get("attributes.gen_ai.response.id")) is not None:
        return response_id({"id": flat}, "id")
    attributes = objects_read_back(metadata, ("attributes",)).get("attributes")
    return response_id(attributes, "gen_ai.response.id") if type(attributes) is dict else None


def usage_counts(details: dict[str, Any], where: str) -> dict[str, int]:
    """Tokens by type from Langfuse's usage kinds, checked against their total."""
    counts = dict.fromkeys(_KINDS, 0)
    units, total, unknown = 0, None, []
    for kind, value in details.items():
        number = _count(value, f"{where}.{kind}")
        if kind == "total":
            total = number
        elif (token_type := _TOKEN_TYPES.get(kind)) is not None:
            counts[token_type] += number
        elif kind in _NOT_TOKENS:
            units += number
        elif number:
            unknown.append(kind)
    if unknown:
        raise RecordError(INVALID_COUNTS, f"{where} holds kinds tokenmeter does not know as tokens: "
                                          f"{', '.join(sorted(unknown))}")
    tokens = sum(counts.values())
    # Langfuse's own total is every kind added up; a provider's counts tokens alone.
    if total is not None and total not in (tokens, tokens + units):
        raise RecordError(INVALID_COUNTS, f"{where} parts add up to {tokens:,} tokens, not its total {total:,}: "
                                          "the instrumentation sent kinds that overlap or miss some (langfuse#10592)")
    return counts


def _names(data: dict[str, Any]) -> dict[str, Any]:
    return _SNAKE if "trace_id" in data else _CAMEL


def _count(value: Any, name: str) -> int:
    # ClickHouse writes a map's UInt64 values quoted, as the raw JSONL export passes them on.
    if type(value) is str and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if type(value) is not int or not 0 <= value <= MAX_TOKENS:
        raise RecordError(INVALID_COUNTS, f"{name} must be a whole number from 0 to 10^9, got {short(value)}")
    return value
