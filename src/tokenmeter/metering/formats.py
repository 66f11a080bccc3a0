"""Recognise each record's format and read what it says about the inference.

Reported counts are what the provider bills, so they are taken as reported and
only split into disjoint token types (see DESIGN.md, "Usage event").
"""

from __future__ import annotations

from typing import Any

from .ai_sdk import is_ai_sdk, is_stream_part, read_ai_sdk
from .apisix import is_apisix, read_apisix
from .batches import (
    BATCH_SUMMARY,
    FAILED_REQUEST,
    batch_response,
    bedrock_batch_response,
    is_batch_manifest,
    is_batch_result,
    is_bedrock_batch_output,
    is_failed_google_batch_line,
)
from .bedrock_runtime import INVOCATION_LOG_KEYS, is_bedrock_runtime, read_bedrock_runtime, read_converse, routed_model
from .claude_agent import skip_reason as agent_skip_reason
from .cohere import is_cohere, read_cohere
from .fields import (
    NothingToBill,
    apart,
    count_at,
    id_at,
    model_at,
    object_at,
    rfc3339_at,
    time_at,
    unix_seconds_at,
    with_counts,
)
from .gemini import gemini_from_sdk, is_gemini, read_gemini
from .kong import is_kong, read_kong
from .langchain import langchain_record, read_langchain
from .litellm import is_litellm, read_litellm
from .log_wrappers import is_platform_event
from .openai_agents import is_agents_trace, read_agents_trace
from .openai_usage import openai_counts
from .otlp import NOT_TRACES, is_otlp_logs_or_metrics
from .pydantic_ai import is_pydantic_ai, read_pydantic_ai
from .records import (
    INVALID_COUNTS,
    INVALID_RECORD,
    NO_USAGE,
    NOT_FINAL,
    PLATFORM_LINE,
    STREAM_CHUNK,
    UNKNOWN_FORMAT,
    Inference,
    RecordError,
)
from .replicate import is_replicate, read_replicate

# An error answer as OpenAI ({"error": {...}}), Anthropic ({"type": "error", "error": {...}}, also a stream's event),
# Ollama ({"error": "..."}, also mid-stream) and TGI ({"error": "...", "error_type"}) write it, with what a gateway
# logs beside it.
_ERROR_KEYS = frozenset(("error", "type", "request_id", "id", "model", "status", "status_code", "timestamp", "created",
                         "error_type"))
# vLLM's and Mistral's error answers ({"object": "error", ...}); boto3's, as an app logs a ClientError's response.
_OBJECT_ERROR_KEYS = frozenset(("object", "message", "type", "param", "code", "model", "request_id", "id"))
_BOTO_ERROR_KEYS = frozenset(("Error", "ResponseMetadata", "message", "modelId"))
# The Responses API stream's error event.
_EVENT_ERROR_KEYS = frozenset(("type", "sequence_number", "code", "message", "param"))


def read_inference(data: Any, bill_proxy_cache_hits: bool = False) -> Inference:
    """The inference a decoded record describes; RecordError or NothingToBill otherwise. (OTLP documents and
    streamed chunks hold parts of several inferences: otlp.py and streams.py read them.)"""
    if not isinstance(data, dict):
        raise RecordError(UNKNOWN_FORMAT, f"a record must be a JSON object, got {type(data).__name__}")
    if data.get("schemaType") == "ModelInvocationLog":
        return _bedrock(data)
    if "call_type" in data and is_litellm(data):
        return read_litellm(data, bill_proxy_cache_hits)
    if "latencies" in data and is_kong(data):
        return read_kong(data, bill_proxy_cache_hits)
    if "llm_summary" in data and is_apisix(data):
        return read_apisix(data)
    if "usageMetadata" in data and is_gemini(data):
        return read_gemini(data)
    if "custom_id" in data and is_batch_result(data):
        return _batch_result(data)
    if "recordId" in data and is_bedrock_batch_output(data):
        return _openai_shaped(bedrock_batch_response(data), {}, data)
    if "totalRecordCount" in data and is_batch_manifest(data):
        raise NothingToBill(BATCH_SUMMARY)
    if ("session_id" in data or "sessionId" in data or "leafUuid" in data or "snapshot" in data) and (
            reason := agent_skip_reason(data)) is not None:
        raise NothingToBill(reason)  # a Claude Agent SDK message other than a step's: its steps bill
    if ("span_data" in data or "workflow_name" in data) and is_agents_trace(data):
        return read_agents_trace(data)
    if "usage_metadata" in data and (sdk_response := gemini_from_sdk(data)) is not None:
        return read_gemini(sdk_response)
    if ("usage_metadata" in data or "llm_output" in data or "token_usage" in data or "lc" in data) and (
            langchain := langchain_record(data)) is not None:
        return read_langchain(langchain)
    if ("usage" in data or "kind" in data) and is_pydantic_ai(data):
        return read_pydantic_ai(data)
    if "type" in data and is_stream_part(data):
        raise NothingToBill(STREAM_CHUNK)  # the Vercel AI SDK's: its steps' finish parts bill
    if ("usage" in data or "totalUsage" in data) and is_ai_sdk(data):
        return read_ai_sdk(data)
    if ("key" in data or "processed_time" in data) and is_failed_google_batch_line(data):
        raise NothingToBill(FAILED_REQUEST)
    response = data.get("response")
    if isinstance(response, dict) and is_gemini(response):
        return read_gemini(response)
    if isinstance(response, dict) and ("usage" in response or "choices" in response):
        request = data.get("request")
        return _openai_shaped(response, request if isinstance(request, dict) else {}, data)
    usage = data.get("usage")
    if isinstance(usage, dict) and ("inputTokens" in usage or "outputTokens" in usage):
        return read_converse(data, usage)
    if is_bedrock_runtime(data):
        return read_bedrock_runtime(data)
    if is_cohere(data):
        return read_cohere(data)
    if "metrics" in data and is_replicate(data):
        return read_replicate(data)
    if usage is None and data.get("object") == "" and not data.get("id") and "choices" in data:
        # Azure OpenAI's content-filter annotations, sent as chunks of a stream with no id, model or text.
        raise NothingToBill(STREAM_CHUNK)
    if isinstance(usage, dict) or "choices" in data:
        return _openai_shaped(data, {}, data)
    if "eval_count" in data or "prompt_eval_count" in data or ("done" in data and "created_at" in data):
        return _ollama(data)
    if "tokens_predicted" in data and "tokens_evaluated" in data:
        return _llama_cpp(data)
    if "model" in data and ("prompt" in data or "messages" in data):
        return _text_only(data, None, data)
    if is_otlp_logs_or_metrics(data):
        raise NothingToBill(NOT_TRACES)
    if is_platform_event(data):
        raise NothingToBill(PLATFORM_LINE)  # START, END and REPORT in Lambda's JSON log format
    if _is_error_answer(data):
        raise NothingToBill(FAILED_REQUEST)  # an API's error answer (a stream's error event): nothing billed
    if data.get("object") == "response" and data.get("usage") is None:
        # A Responses API response not finished (background mode's queued, in_progress: its final state bills
        # once it is logged), or ended with nothing counted.
        raise NothingToBill(NOT_FINAL if data.get("status") in ("queued", "in_progress") else NO_USAGE)
    if isinstance(data.get("results"), list) and str(data.get("id")).startswith("modr"):
        raise NothingToBill(NO_USAGE)  # OpenAI's moderations: no tokens, and free
    if _is_token_count(data):
        raise NothingToBill(NO_USAGE)  # a free count of a request's tokens, before (or instead of) sending it
    raise RecordError(UNKNOWN_FORMAT, "not a Bedrock, OpenAI, Anthropic, Gemini, Cohere, Replicate, LiteLLM, Kong, "
                                      "APISIX, AI SDK, Pydantic AI, LangChain, Ollama, llama.cpp, OpenTelemetry, batch result or text-only record")


# The answers of two providers' token-counting endpoints: OpenAI's /responses/input_tokens and Gemini's
# countTokens. (Anthropic's, {"input_tokens": n} alone, cannot be told from a usage logged without its record.)
_GEMINI_COUNT_KEYS = frozenset(("totalTokens", "totalBillableCharacters", "cachedContentTokenCount",
                                "promptTokensDetails", "cacheTokensDetails"))


def _is_error_answer(data: dict[str, Any]) -> bool:
    error = data.get("error")
    if isinstance(error, dict) or (isinstance(error, str) and error):
        return data.keys() <= _ERROR_KEYS
    if data.get("object") == "error":
        return "message" in data and data.keys() <= _OBJECT_ERROR_KEYS
    if data.get("type") == "error":
        return "message" in data and data.keys() <= _EVENT_ERROR_KEYS
    return isinstance(data.get("Error"), dict) and "ResponseMetadata" in data and data.keys() <= _BOTO_ERROR_KEYS


def _is_token_count(data: dict[str, Any]) -> bool:
    if data.get("object") == "response.input_tokens":
        return True
    return "totalTokens" in data and data.keys() <= _GEMINI_COUNT_KEYS


def _bedrock(data: dict[str, Any]) -> Inference:
    if data.get("operation") == "CountTokens":
        raise NothingToBill(NO_USAGE)  # Bedrock counts a request's tokens for free: nothing was inferred
    inp = object_at(data, "input")
    out = object_at(data, "output")
    model = routed_model(out.get("outputBodyJson"), model_at(data, "modelId"))
    counts = apart(INVOCATION_LOG_KEYS, inp, out, ("input", "output"))
    if "inputTokenCount" not in inp and "outputTokenCount" not in out and not data.get("errorCode"):
        if _media_output(out):
            raise NothingToBill(NO_USAGE)  # an image or video model: billed per image or second, no tokens
        raise RecordError(INVALID_COUNTS, "Bedrock record without inputTokenCount or outputTokenCount")
    return with_counts(model, id_at(data, "requestId"), rfc3339_at(data, "timestamp"), counts)


def _media_output(output: dict[str, Any]) -> bool:
    """A Bedrock image or video model's output: Nova Reel's video in S3; images (Titan, Nova Canvas, Stability's
    newer models) or artifacts (Stability's older ones) in the body."""
    body = output.get("outputBodyJson")
    return "outputVideoS3Path" in output or (isinstance(body, dict) and ("images" in body or "artifacts" in body))


def _openai_shaped(body: dict[str, Any], request: dict[str, Any], outer: dict[str, Any]) -> Inference:
    usage = body.get("usage")
    if not isinstance(usage, dict):
        # A streamed response logged without usage: count its text, if the prompt is there.
        if "messages" in request or "prompt" in request or "messages" in outer or "prompt" in outer:
            return _text_only(request or outer, body, outer)
        raise RecordError(UNKNOWN_FORMAT, "OpenAI-shaped response with no usage and no prompt to count")
    if usage.get("type") == "duration":
        raise NothingToBill(NO_USAGE)  # a transcription by whisper-1: billed by the second, not by the token
    model = model_at(body, "model") if "model" in body else model_at(request, "model")
    request_id = id_at(body, "id")
    chat = "prompt_tokens" in usage or "completion_tokens" in usage
    if not chat and ("cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage):
        return with_counts(model, request_id, unix_seconds_at(body, "created_at"), anthropic_counts(usage))
    # Chat completions and the images endpoint time an answer by `created`, the Responses API by `created_at`.
    created = "created" if chat or "created_at" not in body else "created_at"
    return with_counts(model, request_id, unix_seconds_at(body, created), openai_counts(usage))


def _batch_result(data: dict[str, Any]) -> Inference:
    """A batch API's result line (batches.py): the response it wraps, read as if logged on its own."""
    body, request_id = batch_response(data)
    if not isinstance(body.get("usage"), dict):
        raise NothingToBill(NO_USAGE)  # moderations: no tokens, and free
    inference = _openai_shaped(body, {}, data)
    if inference.request_id is None:
        inference.request_id = request_id  # an embedding's body has no id: the request's stands for it
    return inference


def anthropic_counts(usage: dict[str, Any]) -> dict[str, int]:
    """Anthropic's usage: input_tokens already excludes cache reads and writes."""
    return apart(("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens"), usage, usage)


def _ollama(data: dict[str, Any]) -> Inference:
    if data.get("done") is False:
        raise NothingToBill(NOT_FINAL)
    counts = {
        # Absent when the whole prompt came from Ollama's cache: nothing evaluated.
        "input": count_at(data, "prompt_eval_count", "prompt_eval_count"),
        "output": count_at(data, "eval_count", "eval_count"),
    }
    return with_counts(model_at(data, "model"), None, rfc3339_at(data, "created_at"), counts)


def _llama_cpp(data: dict[str, Any]) -> Inference:
    """llama.cpp server's own `/completion` answer: `tokens_evaluated` is the whole prompt (`tokens_cached` is the
    slot's context after the call, not a cache hit), `tokens_predicted` the output. Streamed, only the last chunk
    (`stop: true`) is final."""
    if data.get("stop") is False:
        raise NothingToBill(NOT_FINAL)
    counts = {"input": count_at(data, "tokens_evaluated", "tokens_evaluated"),
              "output": count_at(data, "tokens_predicted", "tokens_predicted")}
    return with_counts(model_at(data, "model"), None, None, counts)


def _text_only(request: dict[str, Any], response: dict[str, Any] | None, outer: dict[str, Any]) -> Inference:
    model = model_at(response, "model") if response and "model" in response else model_at(request, "model")
    prompt = request.get("prompt")
    messages = request.get("messages")
    if messages is not None:
        messages = _chat_messages(messages)
    elif not isinstance(prompt, str):
        raise RecordError(INVALID_RECORD, "'prompt' must be a string, or 'messages' a list of chat messages")
    holders = (response, outer) if response is not None else (outer,)
    request_id = _first(holders, ("id", "request_id", "run_id"), id_at)
    timestamp = _first(holders, ("timestamp", "created", "created_at"), time_at)
    return Inference(model, request_id, timestamp, None, None if messages else prompt, messages, _completion(holders[0]))


def _first(holders: tuple[dict[str, Any], ...], keys: tuple[str, ...], read: Any) -> Any:
    for holder in holders:
        for key in keys:
            if holder.get(key) is not None:
                return read(holder, key)
    return None


def _completion(holder: dict[str, Any]) -> str | None:
    for key in ("completion", "response", "output_text"):
        value = holder.get(key)
        if isinstance(value, str):
            return value
    choices = holder.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        choice = choices[0]
        message = choice.get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            return message["content"]
        if isinstance(choice.get("text"), str):
            return choice["text"]
    return None


def _chat_messages(messages: Any) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise RecordError(INVALID_RECORD, "'messages' must be a non-empty list of chat messages")
    normalised = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RecordError(INVALID_RECORD, f"messages[{i}] must be an object with a string 'role'")
        content = message.get("content")
        if isinstance(content, list):
            # Content parts: the text parts are what a tokenizer can count.
            texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
            if not all(isinstance(t, str) for t in texts):
                raise RecordError(INVALID_RECORD, f"messages[{i}].content: a text part's 'text' must be a string")
            content = "".join(texts)
        if not isinstance(content, str):
            raise RecordError(INVALID_RECORD, f"messages[{i}].content must be a string or a list of parts")
        normalised.append({"role": message["role"], "content": content})
    return normalised


