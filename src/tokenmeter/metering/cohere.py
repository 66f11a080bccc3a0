"""Cohere's own API, as an app logs its answers: v2 `/chat` (counts in `usage`), v1 `/chat`, `/generate` and
`/embed` of either version (counts in `meta`), and the events of their streams (v2's `message-end` carries the
usage in its `delta`, v1's `stream-end` the whole `response`; every other event is a part: `stream_chunk`).

Cohere reports two counts: `billed_units`, the tokens it bills, and `tokens`, every token the model processed,
including the prompt template and the default preamble Cohere adds and does not bill. The billed ones are
taken (what the call cost); `tokens` only where an answer has no billed token counts. Units that are not
tokens (rerank's `search_units`, embed's `images`, `classifications`) bill nothing here: `no_usage`.

The JavaScript SDK gives the same answers in camelCase (`billedUnits.inputTokens`, v1's `eventType`): read alike.
No Cohere answer names its model: the app logs `model` beside it, else the record is `invalid_record`.
(Cohere models on Bedrock are read from Bedrock's invocation log, or bedrock_runtime.py.)
"""

from __future__ import annotations

from typing import Any

from .fields import NothingToBill, count_at, id_at, model_at, object_at, with_counts
from .records import INVALID_COUNTS, INVALID_RECORD, NO_USAGE, STREAM_CHUNK, Inference, RecordError

_V2_PARTS = frozenset(("message-start", "content-start", "content-delta", "content-end", "tool-plan-delta",
                       "tool-call-start", "tool-call-delta", "tool-call-end", "citation-start", "citation-end",
                       "debug"))
_V1_PARTS = frozenset(("stream-start", "search-queries-generation", "search-results", "text-generation",
                       "citation-generation", "tool-calls-generation", "tool-calls-chunk", "debug"))
_V2_END, _V1_END = "message-end", "stream-end"
_V2_EVENTS, _V1_EVENTS = _V2_PARTS | {_V2_END}, _V1_PARTS | {_V1_END}


def is_cohere(data: dict[str, Any]) -> bool:
    return (_counts_in(data.get("usage")) or _counts_in(data.get("meta"))
            or _event(data, "type") in _V2_EVENTS or _v1_event(data) in _V1_EVENTS)


def read_cohere(data: dict[str, Any]) -> Inference:
    """The inference of a record `is_cohere` took; NothingToBill for a stream's part."""
    v2_event, v1_event = _event(data, "type"), _v1_event(data)
    if v2_event in _V2_PARTS or v1_event in _V1_PARTS:
        raise NothingToBill(STREAM_CHUNK)
    answer = data
    if v2_event == _V2_END:
        holder, where = object_at(object_at(data, "delta"), "usage"), "delta.usage"
    elif v1_event == _V1_END:
        answer = object_at(data, "response")
        holder, where = object_at(answer, "meta"), "response.meta"
    elif _counts_in(data.get("usage")):
        holder, where = data["usage"], "usage"
    else:
        holder, where = data["meta"], "meta"
    if not isinstance(data.get("model"), str):
        raise RecordError(INVALID_RECORD, "a Cohere answer names no model: log the model with it")
    request_id = next((id_at(answer, key) for key in ("id", "response_id", "responseId", "generation_id", "generationId")
                       if answer.get(key)), None)
    return with_counts(model_at(data, "model"), request_id, None, _token_counts(holder, where))


def _token_counts(holder: dict[str, Any], where: str) -> dict[str, int]:
    billed_key = "billed_units" if "billed_units" in holder else "billedUnits"
    billed, processed = _whole(object_at(holder, billed_key)), _whole(object_at(holder, "tokens"))
    for counts, name in ((billed, billed_key), (processed, "tokens")):
        for input_key, output_key in (("input_tokens", "output_tokens"), ("inputTokens", "outputTokens")):
            if input_key in counts or output_key in counts:
                return {"input": count_at(counts, input_key, f"{where}.{name}.{input_key}"),
                        "output": count_at(counts, output_key, f"{where}.{name}.{output_key}")}
    if billed:
        raise NothingToBill(NO_USAGE)  # search units, images, classifications: not tokens
    raise RecordError(INVALID_COUNTS, f"{where} has no token counts")


def _whole(counts: dict[str, Any]) -> dict[str, Any]:
    """Cohere's API types its counts as numbers, and its SDKs keep them as floats (17.0 in a dumped response):
    a whole float is the count it says; any other value is left for count_at to refuse."""
    return {key: int(value) if type(value) is float and value.is_integer() else value for key, value in counts.items()}


def _counts_in(holder: Any) -> bool:
    return isinstance(holder, dict) and (isinstance(holder.get("billed_units"), dict)
                                         or isinstance(holder.get("billedUnits"), dict)
                                         or isinstance(holder.get("tokens"), dict))


def _v1_event(data: dict[str, Any]) -> str | None:
    return _event(data, "event_type") or _event(data, "eventType")


def _event(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None
