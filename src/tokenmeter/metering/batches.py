"""Result files of the batch APIs: each line wraps the response one request would have had on its own.

OpenAI's Batch API (and the providers that copy it) writes `{"id", "custom_id", "response": {"status_code",
"request_id", "body"}, "error"}` per request; Anthropic's Message Batches write `{"custom_id", "result": {"type":
"succeeded", "message"}}`, or a result of type errored, canceled or expired. A request that did not succeed is
not billed by its provider, and bills nothing here. Vertex AI's batch lines (`{"request", "response"}`) and the
Gemini API's (`{"key", "response"}`) are read as wrapped Gemini responses (formats.py); their lines for requests
that failed (Vertex: `status` the error, no response; Gemini: `error` in place of the response) bill nothing.

Bedrock's batch inference writes `{"recordId", "modelInput", "modelOutput"}` per request (`error` in place of
`modelOutput` for one that failed), the output being the body InvokeModel or Converse would have answered, and
a `manifest.json.out` summing the job's tokens, which would bill them a second time.
"""

from __future__ import annotations

from typing import Any

from .fields import NothingToBill, id_at, short
from .records import INVALID_RECORD, RecordError

FAILED_REQUEST = "failed_request"
BATCH_SUMMARY = "batch_summary"
_MANIFEST_KEYS = frozenset(("totalRecordCount", "processedRecordCount", "successRecordCount", "errorRecordCount"))


def is_batch_result(data: dict[str, Any]) -> bool:
    if "custom_id" not in data:
        return False
    response, result = data.get("response"), data.get("result")
    return ((isinstance(response, dict) and "status_code" in response and "body" in response)
            or (response is None and "error" in data) or (isinstance(result, dict) and "type" in result))


def is_failed_google_batch_line(data: dict[str, Any]) -> bool:
    """A line of a Vertex AI or Gemini API batch job's output for a request that failed."""
    if isinstance(data.get("response"), dict):
        return False
    status = data.get("status")
    return (("key" in data and isinstance(data.get("error"), dict))
            or ("processed_time" in data and "request" in data and isinstance(status, str) and bool(status)))


def batch_response(data: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The response body a batch result line holds, and the provider's id of the request (for a body without
    an id of its own, such as an embedding's); NothingToBill for a request that did not succeed."""
    response, result = data.get("response"), data.get("result")
    if isinstance(result, dict) and not isinstance(response, dict):
        return _anthropic(result), None
    if response is None:
        raise NothingToBill(FAILED_REQUEST)  # the error file's lines: {"response": null, "error": {...}}
    status, body = response.get("status_code"), response.get("body")
    if type(status) is not int:
        raise RecordError(INVALID_RECORD, f"'response.status_code' must be an HTTP status, got {short(status)}")
    if not 200 <= status < 300:
        raise NothingToBill(FAILED_REQUEST)
    if not isinstance(body, dict):
        raise RecordError(INVALID_RECORD, f"'response.body' must be an object, got {short(body)}")
    return body, id_at(response, "request_id")


def _anthropic(result: dict[str, Any]) -> dict[str, Any]:
    kind = result.get("type")
    if kind in ("errored", "canceled", "expired"):
        raise NothingToBill(FAILED_REQUEST)
    if kind != "succeeded":
        raise RecordError(INVALID_RECORD, "'result.type' must be succeeded, errored, canceled or expired, got "
                                          f"{short(kind)}")
    message = result.get("message")
    if not isinstance(message, dict):
        raise RecordError(INVALID_RECORD, f"'result.message' must be an object, got {short(message)}")
    return message


def is_bedrock_batch_output(data: dict[str, Any]) -> bool:
    return "recordId" in data and "modelInput" in data and ("modelOutput" in data or "error" in data)


def bedrock_batch_response(data: dict[str, Any]) -> dict[str, Any]:
    """The response body of a Bedrock batch output line; NothingToBill for a request that failed."""
    output = data.get("modelOutput")
    if output is None:
        raise NothingToBill(FAILED_REQUEST)
    if not isinstance(output, dict):
        raise RecordError(INVALID_RECORD, f"'modelOutput' must be an object, got {short(output)}")
    if not isinstance(output.get("model"), str):
        # Only Anthropic's bodies name their model; the job does for the others, and its id is not in the line.
        raise RecordError(INVALID_RECORD, "a Bedrock batch output line whose response names no model (only "
                                          "Anthropic's do): the job's model is not in its output")
    return output


def is_batch_manifest(data: dict[str, Any]) -> bool:
    """Bedrock's manifest.json.out: the job's record and token totals, which its lines bill one by one."""
    return data.keys() >= _MANIFEST_KEYS
