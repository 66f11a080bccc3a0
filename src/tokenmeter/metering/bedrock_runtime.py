"""What an app logs of Bedrock's runtime API (its own call, as opposed to Bedrock's invocation log).

- Converse: the response boto3 or the JavaScript SDK returns (`usage.inputTokens`, ...), and ConverseStream's
  events, whose `metadata` event carries the stream's usage while the others carry text.
- InvokeModel: the response body in each model family's own shape. Amazon Nova's is Converse's, except that
  its cache counts are spelled as the invocation log spells them (`cacheReadInputTokenCount`); Meta Llama's
  (`prompt_token_count`, `generation_token_count`), Amazon Titan Text's (`inputTextTokenCount`, `results[].tokenCount`)
  and Titan Embeddings' (`inputTextTokenCount` beside the `embedding`) are their own; Mistral's carries no counts.
- InvokeModelWithResponseStream: each chunk is the family's own streamed shape; the last one carries Bedrock's
  own counts for the whole call in `amazon-bedrock-invocationMetrics`, named as in the invocation log. It alone
  bills; the chunks before it are `stream_chunk`. (Anthropic's events carry their usage themselves and are
  read as Anthropic streams: streams.py.)

None of these names its model: the app logs `modelId` (or `model`) with it, else the record is `invalid_record`.
Where the app logs the call's request id (`ResponseMetadata.RequestId`, the JavaScript SDK's
`$metadata.requestId`, or `requestId`), the call bills once however often it is logged, and once with its
invocation log.
"""

from __future__ import annotations

from typing import Any

from .fields import NothingToBill, apart, count_at, id_at, list_at, model_at, object_at, with_counts
from .records import INVALID_COUNTS, INVALID_RECORD, STREAM_CHUNK, Inference, RecordError

INVOCATION_METRICS = "amazon-bedrock-invocationMetrics"
INVOCATION_LOG_KEYS = ("inputTokenCount", "cacheReadInputTokenCount", "cacheWriteInputTokenCount", "outputTokenCount")
_CONVERSE_STREAM_PARTS = frozenset(("messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop",
                                    "messageStop"))
# Region prefixes of Bedrock cross-region inference profiles ("us.anthropic.claude-...").
PROFILE_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.", "jp.", "au.", "ca.")


def bedrock_model(model_id: str) -> str:
    """A Bedrock model id, from a foundation-model or inference-profile ARN, or a cross-region profile's id: the
    invocation log names a profile call by the profile's ARN, the app by the id it passed ("us.anthropic..."),
    and both must bill as one model (and, with one request id, one call)."""
    if model_id.startswith("arn:"):
        resource = model_id.split(":", 5)[-1]
        kind, _, name = resource.partition("/")
        if kind != "inference-profile":
            return name or model_id  # a foundation model's id; an application profile's own name
        model_id = name
    if model_id.startswith(PROFILE_PREFIXES):
        return model_id[model_id.index(".") + 1 :] or model_id
    return model_id


def routed_model(answer: Any, model_id: str) -> str:
    """The model that served a call: a prompt router's answer names the model it chose
    (`trace.promptRouter.invokedModelId`), which sets the call's price; the router's own id does not."""
    trace = answer.get("trace") if isinstance(answer, dict) else None
    router = trace.get("promptRouter") if isinstance(trace, dict) else None
    invoked = router.get("invokedModelId") if isinstance(router, dict) else None
    if isinstance(invoked, str) and invoked.strip():
        return bedrock_model(invoked)
    return bedrock_model(model_id)


def is_bedrock_runtime(data: dict[str, Any]) -> bool:
    """A record of Bedrock's runtime API other than a Converse response (which `usage.inputTokens` tells)."""
    return (isinstance(data.get(INVOCATION_METRICS), dict)
            or not _CONVERSE_STREAM_PARTS.isdisjoint(data.keys())
            or _converse_metadata(data) is not None
            or ("generation" in data and ("prompt_token_count" in data or "generation_token_count" in data))
            or "inputTextTokenCount" in data
            or _mistral_outputs(data))


def read_bedrock_runtime(data: dict[str, Any]) -> Inference:
    """The inference of a record `is_bedrock_runtime` took; NothingToBill for a stream's part."""
    metrics = data.get(INVOCATION_METRICS)
    if isinstance(metrics, dict):
        counts = apart(INVOCATION_LOG_KEYS, metrics, metrics, (INVOCATION_METRICS, INVOCATION_METRICS))
        return _logged_call(data, counts)
    if (metadata := _converse_metadata(data)) is not None:
        return read_converse(data, metadata["usage"], metadata)
    if not _CONVERSE_STREAM_PARTS.isdisjoint(data.keys()):
        raise NothingToBill(STREAM_CHUNK)
    if _mistral_outputs(data):
        if all(output.get("stop_reason") is None for output in data["outputs"]):
            raise NothingToBill(STREAM_CHUNK)
        raise RecordError(INVALID_COUNTS, "Mistral's InvokeModel answer carries no token counts: Bedrock's invocation "
                                          f"log, or a stream's last chunk with its {INVOCATION_METRICS}, does")
    if "generation" in data:  # Meta Llama
        return _last_or_whole(data, "stop_reason", "prompt_token_count", "generation_token_count")
    if "totalOutputTextTokenCount" in data:  # Titan Text, streamed
        return _last_or_whole(data, "completionReason", "inputTextTokenCount", "totalOutputTextTokenCount")
    if "results" in data:  # Titan Text
        output = 0
        for position, result in enumerate(list_at(data, "results", "results")):
            if not isinstance(result, dict):
                raise RecordError(INVALID_RECORD, f"results[{position}] must be an object")
            output += count_at(result, "tokenCount", f"results[{position}].tokenCount")
        return _logged_call(data, {"input": count_at(data, "inputTextTokenCount", "inputTextTokenCount"),
                                   "output": output})
    # Titan Embeddings (and a Titan record of any other shape: its input is all it reports).
    return _logged_call(data, {"input": count_at(data, "inputTextTokenCount", "inputTextTokenCount")})


def read_converse(data: dict[str, Any], usage: dict[str, Any], answer: dict[str, Any] | None = None) -> Inference:
    """A Converse response (or Nova's InvokeModel body, or ConverseStream's metadata event, the ``answer`` that
    holds the usage and any trace): inputTokens excludes the cache reads and writes counted beside it."""
    keys = ("inputTokens",
            "cacheReadInputTokens" if "cacheReadInputTokens" in usage else "cacheReadInputTokenCount",
            "cacheWriteInputTokens" if "cacheWriteInputTokens" in usage else "cacheWriteInputTokenCount",
            "outputTokens")
    return _logged_call(data, apart(keys, usage, usage), answer)


def _last_or_whole(data: dict[str, Any], stop: str, input_key: str, output_key: str) -> Inference:
    """A response whose streamed chunks share its shape: a chunk before the last (no stop reason yet) bills
    nothing; the last, with the stream's invocation metrics gone, must still hold the input count."""
    if data.get(stop) is None:
        raise NothingToBill(STREAM_CHUNK)
    if data.get(input_key) is None:
        raise RecordError(INVALID_COUNTS, f"{input_key} is missing: a streamed response's last chunk is billed "
                                          f"from its {INVOCATION_METRICS}; log the chunk whole")
    return _logged_call(data, {"input": count_at(data, input_key, input_key),
                               "output": count_at(data, output_key, output_key)})


def _logged_call(data: dict[str, Any], counts: dict[str, int], answer: dict[str, Any] | None = None) -> Inference:
    """The inference of a call whose model and request id the app logged beside Bedrock's answer (``answer``,
    where it is not the record itself)."""
    key = "modelId" if "modelId" in data else "model"
    if not isinstance(data.get(key), str):
        raise RecordError(INVALID_RECORD, "Bedrock's runtime answer names no model: log its modelId with it")
    metadata = object_at(data, "ResponseMetadata")
    if "RequestId" in metadata:
        request_id = id_at(metadata, "RequestId")
    else:  # the JavaScript SDK's ($metadata), or an id the app logs itself
        js_metadata = object_at(data, "$metadata")
        request_id = id_at(js_metadata, "requestId") if "requestId" in js_metadata else id_at(data, "requestId")
    return with_counts(routed_model(data if answer is None else answer, model_at(data, key)), request_id,
                       _http_date(object_at(metadata, "HTTPHeaders").get("date")), counts)


def _converse_metadata(data: dict[str, Any]) -> dict[str, Any] | None:
    """ConverseStream's `metadata` event ({"metadata": {"usage": {...}, "metrics": {...}}}); None for a record whose
    `metadata` is anything else (an app's own, which attribution may read)."""
    metadata = data.get("metadata")
    if isinstance(metadata, dict):
        usage = metadata.get("usage")
        if isinstance(usage, dict) and ("inputTokens" in usage or "outputTokens" in usage):
            return metadata
    return None


def _mistral_outputs(data: dict[str, Any]) -> bool:
    """Mistral's InvokeModel answer ({"outputs": [{"text", "stop_reason"}]}), whole or a streamed chunk."""
    outputs = data.get("outputs")
    return (isinstance(outputs, list) and bool(outputs)
            and all(isinstance(output, dict) and "stop_reason" in output for output in outputs))


def _http_date(value: Any) -> int | None:
    """An HTTP Date header (RFC 9110: "Sat, 28 Nov 2026 03:31:25 GMT") in ms; None where there is none to read."""
    from email.utils import parsedate_to_datetime  # (here: the email package is ~1 ms of cold start, for one format)

    try:
        return round(parsedate_to_datetime(value).timestamp() * 1000) if isinstance(value, str) else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
