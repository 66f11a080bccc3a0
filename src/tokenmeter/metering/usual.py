"""The usual records of the common formats, read in one step: Bedrock invocation logs, OpenAI and Anthropic
responses with usage, Ollama's final records.

Most records a deployment sees are one of these, in the shape its provider documents. Reading them through
the general readers (formats.py) costs a dozen calls per record for checks that almost never fail; here each
is read in one function. Anything these readers are not sure of (a missing or odd field, a count out of
range, a format they do not know) returns None, and the record goes through the general readers, which give
the clear error or the rare case. So a record read here gives exactly the Inference the general readers
give (tests/property/test_usual_records.py checks it on generated records, good and bad).
"""

from __future__ import annotations

import functools
from typing import Any

from tokenmeter.core.events import MAX_TOKENS

from .bedrock_runtime import PROFILE_PREFIXES, bedrock_model
from .fields import rfc3339_ms
from .openai_usage import VENDOR_DETAIL_KEYS, reasoning_outside
from .streams import is_stream_event

# What a usual record says: (model, request id, its own time in ms, counts by token type), the fields of the
# Inference the general readers make of it (a tuple: one is made per record), with only the counts that bill:
# the token types the general reading finds zero are left out, as metering leaves them out of the events.
Usual = tuple[str, str | None, int | None, dict[str, int]]

# The usage keys each one-step reader knows, as the providers document them (with a transcription's `type` and
# Groq's timings beside OpenAI's counts); a usage with any other key (another server's or SDK's counts, beside or
# inside, a breakdown spelled otherwise) is left to the general readers, which know what it means.
_OPENAI_KEYS = frozenset(("prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details",
                          "completion_tokens_details", "input_tokens", "output_tokens", "input_tokens_details",
                          "output_tokens_details", "queue_time", "prompt_time", "completion_time", "total_time",
                          "type"))
_ANTHROPIC_KEYS = frozenset(("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
                             "cache_creation", "service_tier", "server_tool_use"))

# Bedrock model ARNs and profile ids reduced to their model ids, once each: few distinct ones.
_NAMED_BY_PROFILE = ("arn:", *PROFILE_PREFIXES)
_model_of_arn = functools.lru_cache(maxsize=1_024)(bedrock_model)


def read_usual(data: dict[str, Any]) -> Usual | None:
    """The inference of a usual record, as formats.read_inference reads it; None for any other record."""
    # Records other readers take: OpenTelemetry, streamed chunks, LiteLLM, Gemini, wrapped responses.
    if "resourceSpans" in data or (("object" in data or "type" in data) and is_stream_event(data)):
        return None
    if "schemaType" in data:
        return _bedrock(data) if data["schemaType"] == "ModelInvocationLog" else None
    if "call_type" in data or "usageMetadata" in data or type(data.get("response")) is dict:
        return None
    usage = data.get("usage")
    if type(usage) is dict:
        return _with_usage(data, usage)
    if usage is None and "choices" not in data and data.get("done") is True:
        return _ollama(data)
    return None


def _bedrock(data: dict[str, Any]) -> Usual | None:
    model_id, inp, out = data.get("modelId"), data.get("input"), data.get("output")
    if type(model_id) is not str or type(inp) is not dict or type(out) is not dict:
        return None
    if ("inputTokenCount" not in inp and "outputTokenCount" not in out) or data.get("operation") == "CountTokens":
        return None
    body = out.get("outputBodyJson")
    if type(body) is dict and "trace" in body:
        return None  # a prompt router's answer may name the model it chose
    input_, cached = inp.get("inputTokenCount", 0), inp.get("cacheReadInputTokenCount", 0)
    written, output = inp.get("cacheWriteInputTokenCount", 0), out.get("outputTokenCount", 0)
    request_id = data.get("requestId")
    timestamp = rfc3339_ms(data.get("timestamp"))
    counts = _disjoint(input_, cached, written, output)
    if counts is None or type(request_id) is not str or timestamp is None or not model_id.strip():
        return None
    model = _model_of_arn(model_id) if model_id.startswith(_NAMED_BY_PROFILE) else model_id
    return model, request_id or None, timestamp, counts


def _with_usage(data: dict[str, Any], usage: dict[str, Any]) -> Usual | None:
    model, request_id = data.get("model"), data.get("id")
    if type(model) is not str or type(request_id) is not str or not model.strip():
        return None
    if "prompt_tokens" in usage or "completion_tokens" in usage:  # OpenAI's chat completions
        created = data.get("created")
        counts = _openai_counts(usage, "prompt_tokens", "completion_tokens", "prompt_tokens_details",
                                "completion_tokens_details")
    elif "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage:  # Anthropic's
        if not usage.keys() <= _ANTHROPIC_KEYS:
            return None
        created = data.get("created_at")
        counts = _disjoint(usage.get("input_tokens", 0), usage.get("cache_read_input_tokens", 0),
                           usage.get("cache_creation_input_tokens", 0), usage.get("output_tokens", 0))
    elif "input_tokens" in usage or "output_tokens" in usage:  # OpenAI's Responses API
        created = data.get("created_at")
        counts = _openai_counts(usage, "input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")
    else:
        return None
    if counts is None:
        return None
    if type(created) is int and 0 <= created < 10**11:
        timestamp: int | None = created * 1000
    elif created is None:
        timestamp = None
    else:
        return None  # floats and the rest: the general reader rounds or refuses them
    return model, request_id or None, timestamp, counts


def _disjoint(input_: Any, cached: Any, written: Any, output: Any) -> dict[str, int] | None:
    """Input, cache reads, cache writes and output, each apart from the others as Bedrock and Anthropic report
    them, those that are not zero; None where the general reader would refuse a count, or find nothing to bill."""
    if not (type(input_) is type(cached) is type(written) is type(output) is int
            and 0 <= input_ <= MAX_TOKENS and 0 <= cached <= MAX_TOKENS
            and 0 <= written <= MAX_TOKENS and 0 <= output <= MAX_TOKENS
            and (input_ or cached or written or output)):
        return None
    # Written out rather than filtered: this runs once per record, and most records lack some of the four.
    counts = {"input": input_} if input_ else {}
    if cached:
        counts["cached_input"] = cached
    if written:
        counts["cache_write"] = written
    if output:
        counts["output"] = output
    return counts


def _openai_counts(usage: dict[str, Any], prompt: str, completion: str, prompt_details: str,
                   completion_details: str) -> dict[str, int] | None:
    """Only the usual details, as OpenAI counts them: cached tokens inside the prompt, reasoning tokens inside the
    completion (what other servers write beside or count apart is left to openai_usage.py)."""
    inputs, outputs = usage.get(prompt_details), usage.get(completion_details)
    inputs = {} if inputs is None else inputs
    outputs = {} if outputs is None else outputs
    if type(inputs) is not dict or type(outputs) is not dict or not (_no_modality(inputs) and _no_modality(outputs)):
        return None
    if not usage.keys() <= _OPENAI_KEYS or (inputs and not inputs.keys().isdisjoint(VENDOR_DETAIL_KEYS)):
        return None
    if "type" in usage and usage["type"] != "tokens":  # a transcription's usage by the second: no tokens
        return None
    total_in, cached = usage.get(prompt, 0), inputs.get("cached_tokens", 0)
    total_out, reasoning = usage.get(completion, 0), outputs.get("reasoning_tokens", 0)
    if not (type(total_in) is type(cached) is type(total_out) is type(reasoning) is int
            and 0 <= total_in <= MAX_TOKENS and 0 <= total_out <= MAX_TOKENS and 0 <= cached <= total_in
            and 0 <= reasoning <= total_out and (total_in or total_out)):
        return None
    if reasoning and reasoning_outside(usage, total_in, total_out, reasoning):
        return None
    counts = {"input": total_in - cached} if total_in != cached else {}
    if cached:
        counts["cached_input"] = cached
    if total_out != reasoning:
        counts["output"] = total_out - reasoning
    if reasoning:
        counts["reasoning"] = reasoning
    return counts


def _no_modality(details: dict[str, Any]) -> bool:
    """No audio or image tokens (absent, null or 0, as OpenAI writes them): the general reader splits out and
    checks any others."""
    audio, image = details.get("audio_tokens"), details.get("image_tokens")
    return ((audio is None or (type(audio) is int and audio == 0))
            and (image is None or (type(image) is int and image == 0)))


def _ollama(data: dict[str, Any]) -> Usual | None:
    if "eval_count" not in data and "prompt_eval_count" not in data and "created_at" not in data:
        return None
    model, timestamp = data.get("model"), rfc3339_ms(data.get("created_at"))
    input_, output = data.get("prompt_eval_count", 0), data.get("eval_count", 0)
    if not (type(input_) is type(output) is int and 0 <= input_ <= MAX_TOKENS and 0 <= output <= MAX_TOKENS
            and (input_ or output)):
        return None
    if type(model) is not str or timestamp is None or not model.strip():
        return None
    return model, None, timestamp, ({"input": input_, "output": output} if input_ and output else
                                    {"input": input_} if input_ else {"output": output})
