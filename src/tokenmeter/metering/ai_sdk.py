"""The Vercel AI SDK's results, as a TypeScript app logs them: what `generateText` / `streamText` return or hand
to `onFinish` (`usage`, `totalUsage`, `response: {id, modelId, timestamp}`, `providerMetadata`), or the `usage`
alone with the `model` the app called.

Its usage object has changed shape twice, and what its counts include depends on the release and the provider
(read in the SDK's provider packages):
- 6 and later: `inputTokens` is every input token, `inputTokenDetails` splits it (`noCacheTokens`,
  `cacheReadTokens`, `cacheWriteTokens`); `outputTokens` every output token, `outputTokenDetails.reasoningTokens`
  part of it. The same for every provider.
- 5: `inputTokens`, `outputTokens`, `cachedInputTokens`, `reasoningTokens`. OpenAI's and Google's input counts
  hold the cached tokens; Anthropic's and Bedrock's do not, and their cache writes are only in `providerMetadata`
  (`anthropic.cacheCreationInputTokens`, `bedrock.usage.cacheWriteInputTokens`). Google's reasoning is outside
  its output count, which the total shows (input + output + reasoning), as with openai_usage.py's xAI.
- 4: `promptTokens`, `completionTokens`, each provider's details in `providerMetadata` (OpenAI's
  `cachedPromptTokens` and `reasoningTokens` inside the counts; Anthropic's and Bedrock's cache reads and writes
  beside them).
`embed` / `embedMany` results count `usage.tokens`, input (they name no model: the app logs `model` beside).
A release-5 usage with cached tokens and no `providerMetadata` to say whose they are is an `invalid_counts`
dead letter that says so, rather than a guess either way. A record without its steps (below) bills `totalUsage`
(all of them), not `usage` (the last). Identity: `response.id`; time: `response.timestamp`.

A result or `onFinish` event holds its steps (`steps`, each with its own usage, response id and model): each step
bills as an inference of its own, so a step logged on its own too (`onStepFinish`) bills once. Releases 5 and 6
hold the result's usage and response in getters, which JSON.stringify leaves out: the steps are what a logged
result says.

An app that logs `streamText`'s `fullStream` logs a part per step with that step's usage (`finish-step`, 4's
`step-finish`: the step's response id and model), then a `finish` part with the total (5 and later: no id and
no model; 4: the last step's response). The steps bill; the `finish` part is a `stream_chunk`: billed too, it
would count the steps again, or (4) reuse the last step's ids for other counts.
"""

from __future__ import annotations

from typing import Any

from .fields import carve, count_at, id_at, model_at, object_at, rfc3339_at, with_counts
from .records import INVALID_COUNTS, Inference, RecordError

_DETAILS = ("inputTokenDetails", "outputTokenDetails")
_V5_PARTS = ("cachedInputTokens", "reasoningTokens")
_V4_COUNTS = ("promptTokens", "completionTokens")
CACHE_APART = ("anthropic", "bedrock")  # providers whose input count leaves the cache out (releases 4 and 5)
_ANY_RELEASE = frozenset((*_DETAILS, *_V5_PARTS, *_V4_COUNTS))  # keys only an AI SDK usage has

# The parts of `fullStream` that do not bill, releases 4 to 6 (their steps' finish parts do; the stream's `finish`
# part, whose usage JSON.stringify may have cut to counts any SDK has, is their total), by the type names only the
# SDK writes; the one-word types are told by the key that comes with them.
_PART_TYPES = frozenset((
    "start-step", "text-start", "text-delta", "text-end", "reasoning-start", "reasoning-delta", "reasoning-end",
    "reasoning-file", "tool-input-start", "tool-input-delta", "tool-input-end", "tool-error", "tool-output-denied",
    "tool-approval-request", "tool-approval-response", "step-start", "tool-call-streaming-start", "tool-call-delta",
    "reasoning-signature", "redacted-reasoning"))
_ONE_WORD_PARTS = {"start": None, "abort": None, "raw": "rawValue", "source": "sourceType", "file": "file",
                   "reasoning": "textDelta", "custom": "kind", "finish": "finishReason"}


def is_ai_sdk(data: dict[str, Any]) -> bool:
    usage = _usage(data)
    if not isinstance(usage, dict):
        return False
    if not _ANY_RELEASE.isdisjoint(usage):
        return True
    if "embedding" in data or "embeddings" in data:
        return usage.keys() == {"tokens"}
    response = data.get("response")
    return isinstance(response, dict) and "modelId" in response and ("inputTokens" in usage or "outputTokens" in usage)


def is_stream_part(data: dict[str, Any]) -> bool:
    """A part of a logged `fullStream` without usage (a text delta, a tool call, a step's start, ...)."""
    kind = data.get("type")
    if type(kind) is not str:
        return False
    if kind in _PART_TYPES:
        return True
    if kind in ("tool-call", "tool-result"):
        return "toolCallId" in data
    if kind not in _ONE_WORD_PARTS:
        return False
    key = _ONE_WORD_PARTS[kind]
    return data.keys() <= {"type", "reason"} if key is None else key in data


def ai_sdk_steps(data: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The steps of a result or `onFinish` event, each an AI SDK usage record; None for any other record."""
    steps = data.get("steps")
    if type(steps) is not list or not steps:
        return None
    if all(type(step) is dict and "usage" in step and is_ai_sdk(step) for step in steps):
        return steps
    return None


def read_ai_sdk(data: dict[str, Any]) -> Inference:
    usage, response = _usage(data), object_at(data, "response")
    metadata = object_at(data, "providerMetadata")
    if isinstance(response.get("modelId"), str):
        model = model_at(response, "modelId")
    elif "model" in data or "modelId" not in data:
        model = model_at(data, "model")
    else:
        model = model_at(data, "modelId")
    if usage.keys() == {"tokens"}:
        counts = {"input": count_at(usage, "tokens", "usage.tokens")}
    elif any(key in usage for key in _DETAILS):
        counts = _release_6(usage)
    elif any(key in usage for key in _V4_COUNTS):
        counts = _release_4(usage, metadata)
    else:
        counts = _release_5(usage, metadata)
    return with_counts(model, id_at(response, "id"), rfc3339_at(response, "timestamp"), counts)


def _usage(data: dict[str, Any]) -> Any:
    total = data.get("totalUsage")
    return total if isinstance(total, dict) else data.get("usage")


def _release_6(usage: dict[str, Any]) -> dict[str, int]:
    inputs, outputs = object_at(usage, "inputTokenDetails"), object_at(usage, "outputTokenDetails")
    return {
        **carve("input", count_at(usage, "inputTokens", "usage.inputTokens"), {
            "cached_input": count_at(inputs, "cacheReadTokens", "usage.inputTokenDetails.cacheReadTokens"),
            "cache_write": count_at(inputs, "cacheWriteTokens", "usage.inputTokenDetails.cacheWriteTokens")}),
        **carve("output", count_at(usage, "outputTokens", "usage.outputTokens"), {
            "reasoning": count_at(outputs, "reasoningTokens", "usage.outputTokenDetails.reasoningTokens")}),
    }


def _release_5(usage: dict[str, Any], metadata: dict[str, Any]) -> dict[str, int]:
    inputs = count_at(usage, "inputTokens", "usage.inputTokens")
    outputs = count_at(usage, "outputTokens", "usage.outputTokens")
    cached = count_at(usage, "cachedInputTokens", "usage.cachedInputTokens")
    reasoning = count_at(usage, "reasoningTokens", "usage.reasoningTokens")
    apart = any(isinstance(metadata.get(name), dict) for name in CACHE_APART)
    if cached and not apart and not metadata and cached <= inputs:
        raise RecordError(INVALID_COUNTS, "AI SDK 5 usage with cachedInputTokens and no providerMetadata: OpenAI's "
                                          "and Google's inputTokens hold the cached tokens, Anthropic's and Bedrock's "
                                          "do not; log providerMetadata with the usage")
    if apart or cached > inputs:
        counts = {"input": inputs, "cached_input": cached, "cache_write": cache_writes(metadata)}
    else:
        counts = carve("input", inputs, {"cached_input": cached})
    total = usage.get("totalTokens")
    if reasoning and type(total) is int and total == inputs + outputs + reasoning:  # Google's: beside the output
        return {**counts, "output": outputs, "reasoning": reasoning}
    return {**counts, **carve("output", outputs, {"reasoning": reasoning})}


def _release_4(usage: dict[str, Any], metadata: dict[str, Any]) -> dict[str, int]:
    prompt = count_at(usage, "promptTokens", "usage.promptTokens")
    completion = count_at(usage, "completionTokens", "usage.completionTokens")
    anthropic, bedrock = object_at(metadata, "anthropic"), object_at(object_at(metadata, "bedrock"), "usage")
    if anthropic or bedrock:
        return {"input": prompt, "cached_input": cache_reads(metadata), "cache_write": cache_writes(metadata),
                "output": completion}
    cached, reasoning = openai_inside(metadata)
    return {**carve("input", prompt, {"cached_input": cached}), **carve("output", completion, {"reasoning": reasoning})}


def openai_inside(metadata: dict[str, Any]) -> tuple[int, int]:
    """(cached, reasoning) tokens that release 4's OpenAI `providerMetadata` names, inside the prompt and completion
    counts (release 5 on gives them in the usage)."""
    openai = object_at(metadata, "openai")
    return (count_at(openai, "cachedPromptTokens", "providerMetadata.openai.cachedPromptTokens"),
            count_at(openai, "reasoningTokens", "providerMetadata.openai.reasoningTokens"))


def cache_reads(metadata: dict[str, Any]) -> int:
    """The cache reads Anthropic's and Bedrock's `providerMetadata` name (release 5's Anthropic reads are beside, as
    `cachedInputTokens`, and in the copy of Anthropic's own usage it keeps)."""
    return _provider_count(metadata, "cacheReadInputTokens", "cache_read_input_tokens", "cacheReadInputTokens")


def cache_writes(metadata: dict[str, Any]) -> int:
    """The cache writes Anthropic's and Bedrock's `providerMetadata` name (releases 4 and 5)."""
    return _provider_count(metadata, "cacheCreationInputTokens", "cache_creation_input_tokens", "cacheWriteInputTokens")


def _provider_count(metadata: dict[str, Any], anthropic_key: str, usage_key: str, bedrock_key: str) -> int:
    """Anthropic's field, or where it has none its copy of the response's usage, plus Bedrock's."""
    anthropic, bedrock = object_at(metadata, "anthropic"), object_at(object_at(metadata, "bedrock"), "usage")
    if anthropic.get(anthropic_key) is not None:
        count = count_at(anthropic, anthropic_key, f"providerMetadata.anthropic.{anthropic_key}")
    else:
        count = count_at(object_at(anthropic, "usage"), usage_key, f"providerMetadata.anthropic.usage.{usage_key}")
    return count + count_at(bedrock, bedrock_key, f"providerMetadata.bedrock.usage.{bedrock_key}")
