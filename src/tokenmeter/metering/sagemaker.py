"""SageMaker AI's Data Capture: what a real-time endpoint was asked and answered, a JSON line per request, in S3 at
`<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl`:
`{"captureData": {"endpointInput": {...}, "endpointOutput": {"observedContentType", "mode", "data", "encoding"}},
"eventMetadata": {"eventId", "inferenceTime", "inferenceId"?, "customAttributes"?}, "eventVersion": "0"}`.

`data` is the body as text (`encoding` JSON or CSV) or base64 (BASE64, the default for content types the capture
was not told are text). An LLM container's OpenAI-compatible route (LMI, vLLM, TGI's Messages API) answers with
`usage`: the line is read as a gateway's `{"request", "response"}`, with
- the model the answer names, unless it names none that prices can tell apart (TGI's `tgi`, LMI's `lmi`, the
  container's own path such as `/opt/ml/model`): then the endpoint's name, from where the capture was written;
- the answer's id, or where it has none (TGI answers `""`) the capture's `eventId`;
- the answer's `created`, or the capture's `inferenceTime`.
A streamed answer (`text/event-stream`) bills from its last chunk with usage. An answer in CSV is a classic model's
(`no_usage`); an answer without usage (TGI's own route) is a dead letter that says what would bill.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from typing import Any

from tokenmeter.core import decode_json, parse_rfc3339_ms

from .fields import NothingToBill
from .records import INVALID_COUNTS, INVALID_RECORD, NO_USAGE, RecordError

# Names a container gives its model that say nothing of which model it is.
_GENERIC_MODELS = frozenset(("tgi", "lmi", "model", "default", ""))
_CAPTURE_KEY = re.compile(r"(?:^|/)([^/]+)/[^/]+/\d{4}/\d{2}/\d{2}/\d{2}/[^/]+$")


def is_capture(data: dict[str, Any]) -> bool:
    capture = data.get("captureData")
    return type(capture) is dict and ("endpointOutput" in capture or "endpointInput" in capture)


def capture_record(data: dict[str, Any], key: str | None) -> dict[str, Any]:
    """The captured request and answer as `{"request", "response"}` (the line's `eventMetadata` beside, its
    custom attributes readable by attribution paths; ``key``: the S3 key it was read from, if any); RecordError or
    NothingToBill where nothing can bill."""
    capture, metadata = data["captureData"], data.get("eventMetadata")
    metadata = dict(metadata) if type(metadata) is dict else {}
    output = capture.get("endpointOutput")
    if type(output) is not dict:
        raise RecordError(INVALID_COUNTS, "a capture without the endpoint's answer, where the counts are (the "
                                          "endpoint's DataCaptureConfig captures only its input)")
    if str(output.get("encoding", "")).upper() == "CSV":
        raise NothingToBill(NO_USAGE)  # a classic model's prediction, not a language model's tokens
    response = _answer(_body(output, "endpointOutput"), str(output.get("observedContentType", "")))
    request = _json_or_empty(capture.get("endpointInput"))
    model = response.get("model")
    if type(model) is not str or model.strip().lower() in _GENERIC_MODELS or model.startswith("/"):
        endpoint = (match := _CAPTURE_KEY.search(key or "")) and match.group(1)
        if not endpoint:
            raise RecordError(INVALID_RECORD, f"the endpoint's answer names no model ({model!r}) and {key!r} is not "
                                              "where Data Capture writes (…/<endpoint>/<variant>/yyyy/mm/dd/hh/…)")
        response["model"] = endpoint
    event_id = metadata.get("eventId")
    if not response.get("id") and type(event_id) is str:
        response["id"] = event_id
    inference_time = metadata.get("inferenceTime")
    if "created" not in response and type(inference_time) is str:
        with contextlib.suppress(ValueError):  # unreadable: the object's time is taken, as for any record without one
            response["created"] = parse_rfc3339_ms(inference_time) // 1000
    custom = metadata.get("customAttributes")
    if type(custom) is list and len(custom) == 1 and type(custom[0]) is str:
        metadata["customAttributes"] = _json_object(custom[0]) or custom[0]
    return {"eventMetadata": metadata, "request": request, "response": response}


def _body(part: dict[str, Any], where: str) -> bytes:
    data = part.get("data")
    if type(data) is not str:
        raise RecordError(INVALID_RECORD, f"captureData.{where}.data must be text, got {type(data).__name__}")
    if str(part.get("encoding", "")).upper() != "BASE64":
        return data.encode()
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RecordError(INVALID_RECORD, f"captureData.{where}.data is not base64: {exc}") from exc


def _answer(body: bytes, content_type: str) -> dict[str, Any]:
    if "event-stream" in content_type or body.lstrip().startswith(b"data:"):
        chunks = [_json_object(line[5:].strip()) for line in body.splitlines() if line.startswith(b"data:")]
        with_usage = [chunk for chunk in chunks if chunk and type(chunk.get("usage")) is dict]
        if not with_usage:
            raise RecordError(INVALID_COUNTS, "a streamed answer with no chunk carrying usage (the container's "
                                              "stream_options.include_usage adds it)")
        return with_usage[-1]
    answer = _json_object(body)
    if answer is None:
        raise RecordError(INVALID_RECORD, "the endpoint's answer is not a JSON object")
    if type(answer.get("usage")) is not dict:
        raise RecordError(INVALID_COUNTS, "the endpoint's answer carries no usage (an OpenAI-compatible route, such "
                                          "as /v1/chat/completions on LMI, vLLM or TGI, answers with it)")
    return answer


def _json_or_empty(part: Any) -> dict[str, Any]:
    if type(part) is not dict:
        return {}
    try:
        return _json_object(_body(part, "endpointInput")) or {}
    except RecordError:
        return {}  # the request only names a model the answer may lack


def _json_object(text: str | bytes) -> dict[str, Any] | None:
    try:
        value = decode_json(text)  # (an answer's text may hold half of a surrogate pair, escaped)
    except ValueError:
        return None
    return value if type(value) is dict else None
