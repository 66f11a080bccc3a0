"""Recognise each record's format and read what it says about the inference.

Reported counts are what the provider bills, so they are taken as reported and
only split into disjoint token types (see DESIGN.md, "Usage event").
"""

from __future__ import annotations

from typing import Any

from tokenmeter.core import parse_rfc3339_ms
from tokenmeter.core.events import MAX_TOKENS

from .records import (
    INVALID_COUNTS,
    INVALID_RECORD,
    INVALID_TIMESTAMP,
    NO_USAGE,
    NOT_FINAL,
    UNKNOWN_FORMAT,
    Inference,
    RecordError,
)

# Region prefixes of Bedrock cross-region inference profiles ("us.anthropic.claude-...").
_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.", "jp.", "au.", "ca.")


class NothingToBill(Exception):
    """Raised for a record that is valid but bills nothing (a non-final chunk, zero tokens)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def read_inference(data: Any) -> Inference:
    """The inference a decoded record describes; RecordError or NothingToBill otherwise."""
    if not isinstance(data, dict):
        raise RecordError(UNKNOWN_FORMAT, f"a record must be a JSON object, got {type(data).__name__}")
    if data.get("schemaType") == "ModelInvocationLog":
        return _bedrock(data)
    response = data.get("response")
    if isinstance(response, dict) and ("usage" in response or "choices" in response):
        request = data.get("request")
        return _openai_shaped(response, request if isinstance(request, dict) else {}, data)
    if isinstance(data.get("usage"), dict) or "choices" in data:
        return _openai_shaped(data, {}, data)
    if "eval_count" in data or "prompt_eval_count" in data or ("done" in data and "created_at" in data):
        return _ollama(data)
    if "model" in data and ("prompt" in data or "messages" in data):
        return _text_only(data, None, data)
    raise RecordError(UNKNOWN_FORMAT, "not a Bedrock, OpenAI, Anthropic, Ollama or text-only record")


def _bedrock(data: dict[str, Any]) -> Inference:
    model = _bedrock_model(_model(data, "modelId"))
    inp = _object(data, "input")
    out = _object(data, "output")
    counts = {
        "input": _count(inp, "inputTokenCount", "input.inputTokenCount"),
        "cached_input": _count(inp, "cacheReadInputTokenCount", "input.cacheReadInputTokenCount"),
        "cache_write": _count(inp, "cacheWriteInputTokenCount", "input.cacheWriteInputTokenCount"),
        "output": _count(out, "outputTokenCount", "output.outputTokenCount"),
    }
    if "inputTokenCount" not in inp and "outputTokenCount" not in out and not data.get("errorCode"):
        raise RecordError(INVALID_COUNTS, "Bedrock record without inputTokenCount or outputTokenCount")
    return _with_counts(model, _request_id(data, "requestId"), _rfc3339(data, "timestamp"), counts)


def _bedrock_model(model_id: str) -> str:
    """A Bedrock model id, with an inference-profile or foundation-model ARN reduced to it."""
    if not model_id.startswith("arn:"):
        return model_id
    resource = model_id.split(":", 5)[-1]
    kind, _, name = resource.partition("/")
    if kind == "inference-profile":
        for prefix in _PROFILE_PREFIXES:
            if name.startswith(prefix):
                return name[len(prefix) :]
    return name or model_id


def _openai_shaped(body: dict[str, Any], request: dict[str, Any], outer: dict[str, Any]) -> Inference:
    usage = body.get("usage")
    if not isinstance(usage, dict):
        # A streamed response logged without usage: count its text, if the prompt is there.
        if "messages" in request or "prompt" in request or "messages" in outer or "prompt" in outer:
            return _text_only(request or outer, body, outer)
        raise RecordError(UNKNOWN_FORMAT, "OpenAI-shaped response with no usage and no prompt to count")
    model = _model(body, "model") if "model" in body else _model(request, "model")
    request_id = _request_id(body, "id")
    if not usage.keys() & {"prompt_tokens", "completion_tokens", "input_tokens", "output_tokens"}:
        raise RecordError(INVALID_COUNTS, "'usage' has no token counts")
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        prompt = _count(usage, "prompt_tokens", "usage.prompt_tokens")
        completion = _count(usage, "completion_tokens", "usage.completion_tokens")
        cached = _count(_object(usage, "prompt_tokens_details"), "cached_tokens", "cached_tokens")
        reasoning = _count(_object(usage, "completion_tokens_details"), "reasoning_tokens", "reasoning_tokens")
        timestamp = _unix_seconds(body, "created")
    else:
        prompt = _count(usage, "input_tokens", "usage.input_tokens")
        completion = _count(usage, "output_tokens", "usage.output_tokens")
        if "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage:
            # Anthropic: input_tokens already excludes cache reads and writes.
            counts = {
                "input": prompt,
                "cached_input": _count(usage, "cache_read_input_tokens", "usage.cache_read_input_tokens"),
                "cache_write": _count(usage, "cache_creation_input_tokens", "usage.cache_creation_input_tokens"),
                "output": completion,
            }
            return _with_counts(model, request_id, _unix_seconds(body, "created_at"), counts)
        # OpenAI Responses API: input includes cached, output includes reasoning.
        cached = _count(_object(usage, "input_tokens_details"), "cached_tokens", "cached_tokens")
        reasoning = _count(_object(usage, "output_tokens_details"), "reasoning_tokens", "reasoning_tokens")
        timestamp = _unix_seconds(body, "created_at")
    if cached > prompt:
        raise RecordError(INVALID_COUNTS, f"cached_tokens {cached} exceed the prompt's {prompt}")
    if reasoning > completion:
        raise RecordError(INVALID_COUNTS, f"reasoning_tokens {reasoning} exceed the completion's {completion}")
    counts = {"input": prompt - cached, "cached_input": cached, "output": completion - reasoning, "reasoning": reasoning}
    return _with_counts(model, request_id, timestamp, counts)


def _ollama(data: dict[str, Any]) -> Inference:
    if data.get("done") is False:
        raise NothingToBill(NOT_FINAL)
    counts = {
        # Absent when the whole prompt came from Ollama's cache: nothing evaluated.
        "input": _count(data, "prompt_eval_count", "prompt_eval_count"),
        "output": _count(data, "eval_count", "eval_count"),
    }
    return _with_counts(_model(data, "model"), None, _rfc3339(data, "created_at"), counts)


def _text_only(request: dict[str, Any], response: dict[str, Any] | None, outer: dict[str, Any]) -> Inference:
    model = _model(response, "model") if response and "model" in response else _model(request, "model")
    prompt = request.get("prompt")
    messages = request.get("messages")
    if messages is not None:
        messages = _chat_messages(messages)
    elif not isinstance(prompt, str):
        raise RecordError(INVALID_RECORD, "'prompt' must be a string, or 'messages' a list of chat messages")
    holders = (response, outer) if response is not None else (outer,)
    request_id = _first(holders, ("id", "request_id", "run_id"), _request_id)
    timestamp = _first(holders, ("timestamp", "created", "created_at"), _any_time)
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


def _with_counts(model: str, request_id: str | None, timestamp: int | None, counts: dict[str, int]) -> Inference:
    if not any(counts.values()):
        raise NothingToBill(NO_USAGE)
    return Inference(model, request_id, timestamp, counts)


def _count(holder: dict[str, Any], key: str, name: str) -> int:
    value = holder.get(key)
    if value is None:
        return 0
    if type(value) is not int or not 0 <= value <= MAX_TOKENS:
        raise RecordError(INVALID_COUNTS, f"{name} must be a whole number from 0 to 10^9, got {_short(value)}")
    return value


def _object(holder: dict[str, Any], key: str) -> dict[str, Any]:
    value = holder.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(INVALID_RECORD, f"{key!r} must be an object, got {_short(value)}")
    return value


def _model(holder: dict[str, Any], key: str) -> str:
    value = holder.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RecordError(INVALID_RECORD, f"{key!r} must name the model, got {_short(value)}")
    return value


def _request_id(holder: dict[str, Any], key: str) -> str | None:
    value = holder.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    raise RecordError(INVALID_RECORD, f"{key!r} must be a string id, got {_short(value)}")


def _rfc3339(holder: dict[str, Any], key: str) -> int | None:
    value = holder.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return parse_rfc3339_ms(value)
        except ValueError:
            pass
    raise RecordError(INVALID_TIMESTAMP, f"{key!r} must be an RFC 3339 time, got {_short(value)}")


def _unix_seconds(holder: dict[str, Any], key: str) -> int | None:
    value = holder.get(key)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 10**11:
        return round(value * 1000)
    raise RecordError(INVALID_TIMESTAMP, f"{key!r} must be Unix seconds, got {_short(value)}")


def _any_time(holder: dict[str, Any], key: str) -> int | None:
    value = holder.get(key)
    if isinstance(value, str):
        # isascii: str.isdigit() also takes digits such as "²" that float() refuses.
        if not (value.isascii() and value.replace(".", "", 1).isdigit()):
            return _rfc3339(holder, key)
        value = float(value)
    return _unix_seconds({key: value}, key)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
